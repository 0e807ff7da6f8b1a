"""HTTP resources: one blueprint per resource, each a thin layer over the services."""
from . import (articles, bundle, conditions, editorial, faqs, feed, labels, ops, people, products, search, sources,
               webhooks)

DELIVERY_BLUEPRINTS = [products.blp, conditions.blp, articles.blp, faqs.blp, sources.blp, people.blp,
                       search.blp, feed.blp, labels.blp, bundle.blp]
EDITORIAL_BLUEPRINTS = [editorial.blp, webhooks.blp]
# Served again under /v1/preview over head revisions (the feed has no meaning for drafts).
PREVIEWED = [products.blp, conditions.blp, articles.blp, faqs.blp, sources.blp, people.blp, search.blp, labels.blp]
OPERATIONS_BLUEPRINTS = [ops.blp]
