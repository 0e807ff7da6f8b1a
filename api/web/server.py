"""The front every request crosses before Flask: an ASGI application for granian.

granian (Rust, hyper) reads request lines and headers on its event loop with a deadline, so a
client that dribbles its headers holds a socket, never a Python thread. What it does not bound is
the body: under its WSGI interface the app's thread blocks reading `wsgi.input` for as long as the
client cares to send. So the app is served over ASGI instead, and this front reads the whole body
on the event loop, within a deadline and a size cap, before the Flask app runs on the worker's one
thread. The Flask app only ever sees complete requests, as behind a buffering proxy.
"""
import asyncio
import io
import sys
from concurrent.futures import ThreadPoolExecutor

import orjson

from api.web.security import SECURITY_HEADERS

# A request whose body has not fully arrived this long after its headers is answered 408
# (`medkb serve --body-timeout`).
BODY_READ_TIMEOUT = 30.0


def problem_bytes(status, title, detail):
    return orjson.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


class BufferedWSGI:
    """Serves a WSGI app over ASGI: request bodies are buffered on the event loop first."""

    def __init__(self, wsgi_app, *, max_body, body_timeout=BODY_READ_TIMEOUT):
        self.wsgi_app, self.max_body, self.body_timeout = wsgi_app, max_body, body_timeout
        # One thread: the app was written for one request at a time per process (as under
        # gunicorn's sync workers), and with the GIL more threads would buy little for CPU-bound reads.
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="medkb-app")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        headers = scope["headers"]
        declared = next((value for name, value in headers if name == b"content-length"), None)
        chunked = any(name == b"transfer-encoding" for name, _ in headers)
        try:
            if declared is not None and int(declared) > self.max_body:
                raise _TooLarge
            # HTTP/1.1 framing: with neither header there is no body, and nothing to wait for.
            body = b"" if declared is None and not chunked else await asyncio.wait_for(
                self._read_body(receive), self.body_timeout)
        except _TooLarge:
            return await self._answer(send, 413, "Request Entity Too Large",
                                      f"The request body is larger than {self.max_body} bytes.")
        except TimeoutError:
            return await self._answer(send, 408, "Request Timeout",
                                      f"The request body did not arrive within {self.body_timeout:g} seconds.")
        except ValueError:
            return await self._answer(send, 400, "Bad Request", "Content-Length is not a number.")
        except _Disconnected:
            return
        environ = self._environ(scope, body)
        loop = asyncio.get_running_loop()
        status, response_headers, chunks, rest = await loop.run_in_executor(self.executor, self._run, environ)
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        if rest is None:
            await send({"type": "http.response.body", "body": b"".join(chunks)})
            return
        # A body of several chunks (a file: the bundle) is sent as it is read, never whole in memory;
        # each read runs on the app's thread, like the rest of the app.
        iterator, iterable = rest
        try:
            for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            while (chunk := await loop.run_in_executor(self.executor, next, iterator, None)) is not None:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            if hasattr(iterable, "close"):
                await loop.run_in_executor(self.executor, iterable.close)

    async def _read_body(self, receive):
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                # A body cut short is never handed to the app: it could parse as a smaller request.
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    async def _answer(self, send, status, title, detail):
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/problem+json"), (b"connection", b"close"),
            *((name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items())]})
        await send({"type": "http.response.body", "body": problem_bytes(status, title, detail)})

    def _run(self, environ):
        response = {}

        def start_response(status, headers, exc_info=None):
            response["status"], response["headers"] = int(status.split(" ", 1)[0]), headers

        iterable = self.wsgi_app(environ, start_response)
        iterator = iter(iterable)
        chunks, rest = [], None
        try:
            # Two chunks at most here: one is the common answer, sent whole; a second means a
            # streamed body, whose rest the caller reads a chunk at a time.
            for chunk in iterator:
                chunks.append(chunk)
                if len(chunks) == 2:
                    rest = iterator, iterable
                    break
        finally:
            if rest is None and hasattr(iterable, "close"):
                iterable.close()
        headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response["headers"]]
        return response["status"], headers, chunks, rest

    @staticmethod
    def _environ(scope, body):
        server = scope.get("server") or ("127.0.0.1", 80)
        client = scope.get("client") or ("", 0)
        environ = {
            "REQUEST_METHOD": scope["method"],
            "SCRIPT_NAME": scope.get("root_path", "").encode().decode("latin-1"),
            # PEP 3333: the path as bytes, carried in a latin-1 str.
            "PATH_INFO": scope["path"].encode().decode("latin-1"),
            "QUERY_STRING": scope["query_string"].decode("latin-1"),
            "SERVER_NAME": str(server[0]),
            "SERVER_PORT": str(server[1]),
            "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
            "REMOTE_ADDR": client[0],
            "REMOTE_PORT": str(client[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scope.get("scheme", "http"),
            "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(body)) if body else "",
        }
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").upper().replace("-", "_")
            value = raw_value.decode("latin-1")
            if name == "CONTENT_LENGTH":
                continue  # the buffered body's own length, set above, is the truth now
            if name != "CONTENT_TYPE":
                name = f"HTTP_{name}"
            environ[name] = f"{environ[name]},{value}" if name in environ else value
        return environ

