"""HTTP resources: one blueprint per resource, each a thin layer over the services."""
from . import articles, conditions, editorial, faqs, feed, ops, people, preview, products, search, sources

DELIVERY_BLUEPRINTS = [products.blp, conditions.blp, articles.blp, faqs.blp, sources.blp, people.blp,
                       search.blp, feed.blp]
EDITORIAL_BLUEPRINTS = [editorial.blp, preview.blp]
OPERATIONS_BLUEPRINTS = [ops.blp]
