"""RFC 8288 Link headers beside X-Pagination, so clients generated from the spec (which read
standard headers, not our JSON one) can page: first, prev, next, last. Relative URLs: the
request's Host never reaches a response."""
import json
from urllib.parse import urlencode

from flask import request


def add_page_links(response):
    """after_request: a Link header for every paginated answer."""
    metadata = response.headers.get("X-Pagination")
    if not metadata:
        return response
    pages = json.loads(metadata)
    query = request.args.to_dict()
    relations = {"first": pages.get("first_page"), "prev": pages.get("previous_page"),
                 "next": pages.get("next_page"), "last": pages.get("last_page")}
    links = []
    for relation, page in relations.items():
        if page is not None:
            links.append(f'<{request.path}?{urlencode({**query, "page": page})}>; rel="{relation}"')
    if links:
        response.headers["Link"] = ", ".join(links)
    return response
