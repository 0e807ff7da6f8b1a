"""A real webhook receiver on 127.0.0.1 for tests: verifies every signature with the standardwebhooks library."""
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


class Receiver:
    """Listens on a free loopback port; `url(name)` is a hook whose secret `secrets[name]` must sign
    what arrives there. `status` is what it answers (503 to play dead), `delay` how long it thinks."""

    def __init__(self, tls=None):
        """tls: (certificate file, key file) to serve https for the name `localhost`."""
        self.secrets = {}
        self.received = []  # (name, webhook-id, payload) of every verified delivery, in arrival order
        self.rejected = []  # (name, reason) of anything that did not verify
        self.status = 204
        self.delay = 0.0
        self.redirect_to = None
        self.hold = None  # an Event: while it is not set, every request waits inside the receiver
        self.in_flight = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                name = self.path.rsplit("/", 1)[-1]
                with receiver._lock:
                    receiver.in_flight += 1
                try:
                    if receiver.hold is not None:
                        receiver.hold.wait(timeout=30)
                    if receiver.delay:
                        time.sleep(receiver.delay)
                finally:
                    with receiver._lock:
                        receiver.in_flight -= 1
                try:
                    payload = Webhook(receiver.secrets[name]).verify(body, dict(self.headers))
                except Exception as error:  # noqa: BLE001 - any failure to verify is recorded
                    with receiver._lock:
                        receiver.rejected.append((name, repr(error)))
                    self.send_response(400)
                    self.end_headers()
                    return
                status = receiver.status
                if status < 300:
                    with receiver._lock:
                        receiver.received.append((name, self.headers["webhook-id"], payload))
                self.send_response(status)
                if receiver.redirect_to:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.tls = tls
        if tls:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def url(self, name="hook"):
        if self.tls:
            return f"https://localhost:{self.port}/hooks/{name}"
        return f"http://127.0.0.1:{self.port}/hooks/{name}"

    def messages(self, name="hook"):
        with self._lock:
            return [payload for who, _, payload in self.received if who == name]

    def ids(self, name="hook"):
        with self._lock:
            return [message_id for who, message_id, _ in self.received if who == name]

    def wait_for(self, predicate, timeout=30.0):
        """Poll until predicate() holds; False after `timeout` (a liveness bound, not a speed check)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
