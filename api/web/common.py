"""What every delivery resource does with a request: find published documents, render, tag."""
from flask import current_app, request
from flask_smorest import abort

from api.services.delivery import NotPublished
from api.web.smorest import public_response


def delivery():
    services = current_app.extensions["medkb"]
    return services.preview if request.blueprint.startswith("preview-") else services.delivery


def preferences(args):
    """Locales the caller asked for, best first: `locale=` wins over Accept-Language."""
    if args.get("locale"):
        return [args["locale"]]
    if not request.environ.get("HTTP_ACCEPT_LANGUAGE"):
        return []
    return [value for value, quality in request.accept_languages if quality > 0 and value != "*"]


def published(call, *args):
    try:
        return call(*args)
    except NotPublished as error:
        abort(404, message=str(error))


def send_one(blp, entry, args):
    rendered = delivery().render(entry, args.get("fields"), args.get("include"), preferences(args))
    blp.set_etag_value(rendered.etag)
    return public_response(rendered.body, language=rendered.locale)


def send_page(blp, entries, args, pagination_parameters):
    """One page of `entries`; the total goes in the X-Pagination header. A page past the end is empty."""
    pagination_parameters.item_count = len(entries)
    first, size = pagination_parameters.first_item, pagination_parameters.page_size
    page = entries[first:first + size]
    rendered = delivery().render_list(page, args.get("fields"), args.get("include"), preferences(args),
                                      extra=(pagination_parameters.page, size, len(entries)))
    blp.set_etag_value(rendered.etag)
    return public_response(rendered.body, language=rendered.locale)
