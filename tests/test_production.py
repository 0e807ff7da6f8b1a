"""`medkb serve` in front of hostile and ordinary clients: slow clients, keep-alive, oversized
requests, security headers and CORS, through a real server and real clients on loopback."""
import http.client
import socket
import statistics
import threading
import time

import pytest
import requests

from conftest import CONTENT, import_documents
from servers import serving

PRODUCT = "/v1/products/hemgenix"


@pytest.fixture(scope="module")
def served_db(tmp_path_factory):
    from api.knowledge.documents import load_set

    return import_documents(tmp_path_factory.mktemp("served") / "db", load_set([CONTENT]).documents.values())


@pytest.fixture(scope="module")
def server(served_db):
    with serving(served_db, check_exit=True) as base:
        yield base


@pytest.fixture(scope="module")
def strict_server(served_db):
    """Short header and body deadlines and a small public rate limit, so that tests can watch them act."""
    with serving(served_db, args=["--header-timeout", "2", "--body-timeout", "2"], check_exit=True,
                        env={"MEDKB_RATE_LIMIT_PUBLIC": "5 per minute"}) as base:
        yield base


def port_of(base):
    return int(base.rsplit(":", 1)[1])


def test_ordinary_requests_are_answered_while_200_clients_dribble_their_headers(server, capsys):
    dribblers = [socket.create_connection(("127.0.0.1", port_of(server)), timeout=5) for _ in range(200)]
    for dribbler in dribblers:
        dribbler.sendall(b"GET /v1/products HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    stop = threading.Event()

    def dribble():  # one byte a second on every socket, for at most 10 seconds
        for _ in range(10):
            for dribbler in dribblers:
                try:
                    dribbler.send(b"a")
                except OSError:
                    pass
            if stop.wait(1):
                return

    thread = threading.Thread(target=dribble)
    thread.start()
    latencies = []
    try:
        time.sleep(1)  # every slow socket is open and mid-header before the ordinary clients come
        for _ in range(100):
            started = time.perf_counter()
            response = requests.get(f"{server}{PRODUCT}", timeout=10)
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200 and response.json()["id"] == "hemgenix"
    finally:
        stop.set()
        thread.join()
        for dribbler in dribblers:
            dribbler.close()
    latencies.sort()
    with capsys.disabled():  # a figure for the reader, not an assertion: the machine is shared
        print(f"\n  100 GETs beside 200 slow-header sockets: median {statistics.median(latencies) * 1000:.1f} ms, "
              f"p99 {latencies[98] * 1000:.1f} ms")


def test_well_behaved_clients_keep_their_connection(server):
    connection = http.client.HTTPConnection("127.0.0.1", port_of(server), timeout=10)
    sockets = []
    try:
        for _ in range(3):
            connection.request("GET", PRODUCT)
            response = connection.getresponse()
            assert response.status == 200 and response.read()
            assert response.getheader("Connection", "").lower() != "close"
            sockets.append(connection.sock)
    finally:
        connection.close()
    assert sockets[0] is sockets[1] is sockets[2], "the same connection served every request"


def read_all(sock, limit=65536):
    data = b""
    try:
        while chunk := sock.recv(limit):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def test_a_client_that_never_finishes_its_headers_is_dropped(strict_server):
    with socket.create_connection(("127.0.0.1", port_of(strict_server)), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        answer = read_all(sock)
        assert time.monotonic() - started < 25, "the server closed the connection at its header deadline"
    assert b"200 OK" not in answer


def test_a_body_that_never_arrives_is_answered_408_problem(strict_server):
    with socket.create_connection(("127.0.0.1", port_of(strict_server)), timeout=30) as sock:
        sock.sendall(b"POST /v1/editorial/documents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"type\"")
        answer = read_all(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"application/problem+json" in head.lower()
    assert b'"status":408' in body
    # The worker was never tied up: it answers at once.
    assert requests.get(f"{strict_server}/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize("request_bytes, status", [
    # More header fields than the server takes; small, so the whole request is sent before the
    # answer comes (a huge one would be cut off mid-send, and the answer lost to a reset).
    (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(200)) + b"\r\n",
     431),
    (b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414),
    (b"NOT HTTP AT ALL\r\n\r\n", 400),
])
def test_requests_the_server_refuses_get_no_html(server, request_bytes, status):
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=10) as sock:
        sock.sendall(request_bytes)
        head, _, body = read_all(sock).partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}".encode()), head
    assert b"html" not in head.lower() and b"<" not in body


def test_a_body_over_the_limit_is_refused_before_it_is_read(server):
    response = requests.post(f"{server}/v1/editorial/documents", data=b"x" * (1024 * 1024 + 1),
                             headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 413 and response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 413


SECURITY = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


@pytest.mark.parametrize("path", [PRODUCT, "/v1/nothing", "/healthz", "/openapi.json", "/docs", "/docs/init.js"])
def test_every_response_carries_the_security_headers(server, path):
    response = requests.get(f"{server}{path}", timeout=10)
    assert {name: response.headers.get(name) for name in SECURITY} == SECURITY
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_preflight_on_public_delivery_allows_any_origin_and_exposes_paging_headers(server):
    preflight = requests.options(f"{server}/v1/products", timeout=10, headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "If-None-Match"})
    assert preflight.status_code == 204 and not preflight.content
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    assert "if-none-match" in preflight.headers["Access-Control-Allow-Headers"].lower()
    listed = requests.get(f"{server}/v1/products", headers={"Origin": "https://app.example"}, timeout=10)
    assert listed.headers["Access-Control-Allow-Origin"] == "*"
    exposed = {name.strip().lower() for name in listed.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"etag", "x-pagination", "link"} <= exposed


@pytest.mark.parametrize("path", ["/v1/editorial/documents", "/v1/preview/products/hemgenix"])
def test_editorial_and_preview_are_never_cross_origin(server, path):
    preflight = requests.options(f"{server}{path}", timeout=10, headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization"})
    assert not any(name.lower().startswith("access-control-") for name in preflight.headers)
    assert preflight.headers.get("Content-Type") is None and not preflight.content


def test_redirects_point_at_this_server_whatever_the_host_header(server):
    response = requests.get(f"{server}/v1//products/hemgenix", headers={"Host": "evil.example"},
                            allow_redirects=False, timeout=10)
    assert response.status_code == 308 and response.headers["Location"] == "/v1/products/hemgenix"
    assert response.headers["Content-Type"] == "application/problem+json" and response.json()["status"] == 308


def test_jsonld_urls_come_from_configuration_not_the_host_header(server):
    page = requests.get(f"{server}/v1/articles/how-does-hemgenix-work/jsonld", headers={"Host": "evil.example"},
                        timeout=10).json()
    assert page["url"] == "http://127.0.0.1:8000/how-does-hemgenix-work"


def test_the_docs_render_in_a_real_browser_under_their_csp(server, tmp_path):
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no Chromium on this machine")
    rendered = subprocess.run(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         f"--user-data-dir={tmp_path}", "--virtual-time-budget=10000", "--dump-dom", f"{server}/docs"],
        capture_output=True, timeout=120, check=True).stdout.decode()
    # Operations appear only if Swagger UI's scripts ran and fetched the spec: the CSP let them.
    assert 'data-path="/v1/products/{id}"' in rendered and "opblock-summary" in rendered
    csp = requests.get(f"{server}/docs", timeout=10).headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_the_public_rate_limit_is_shared_by_every_worker(strict_server):
    statuses, retry_after = [], set()
    for _ in range(12):  # a new connection each time: granian spreads them over both workers
        response = requests.get(f"{strict_server}/v1/conditions", headers={"Connection": "close"}, timeout=10)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.headers["Content-Type"] == "application/problem+json"
            retry_after.add(int(response.headers["Retry-After"]))
    assert statuses.count(200) == 5 and statuses.count(429) == 7, statuses
    assert all(1 <= seconds <= 60 for seconds in retry_after)


def sample(text, name, **labels):
    """The value of one sample in Prometheus text, or None."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_add_up_every_worker(served_db):
    from api.store.keys import KeyStore

    admin = {"Authorization": f"Bearer {KeyStore(served_db).create('admin', 'metrics-scraper')[1]}"}
    with serving(served_db, workers=2, check_exit=True) as base:
        for _ in range(30):  # new connections, spread over both workers
            assert requests.get(f"{base}/v1/sources/hemgenix-fda-label", headers={"Connection": "close"},
                                timeout=10).status_code in (200, 404)
        assert requests.get(f"{base}/metrics", timeout=10).status_code == 401
        scraped = requests.get(f"{base}/metrics", headers=admin, timeout=10)
    assert scraped.status_code == 200 and scraped.headers["Content-Type"].startswith("text/plain")
    text = scraped.text
    answered = [sample(text, "medkb_http_requests_total", method="GET", route="/v1/sources/<slug:id>", status=status)
                for status in ("200", "404")]
    assert sum(value or 0 for value in answered) == 30, "both workers' counts, added up"
    assert sample(text, "medkb_http_request_duration_seconds_count", method="GET",
                  route="/v1/sources/<slug:id>") == 30
    assert sample(text, "medkb_read_model_lag_changes") == 0


def test_a_chunked_body_reaches_the_app_whole(server, served_db):
    import json

    from api.store.keys import KeyStore

    secret = KeyStore(served_db).create("author", "chunky")[1]
    document = {"type": "faq", "id": "sent-in-chunks", "schema_version": 2, "locale": "en-US",
                "product": "hemgenix", "position": 99, "question": "Can a request body come in chunks?",
                "answer": "Yes: the server reads it whole before the app sees it.",
                "citations": [{"source": "medfinder-how-does-hemgenix-work", "locator": "Step 4: Factor IX Production Begins"}]}
    text = json.dumps(document).encode()
    # A generator body: requests sends it with Transfer-Encoding: chunked, no Content-Length.
    response = requests.post(f"{server}/v1/editorial/documents", data=(text[i:i + 50] for i in range(0, len(text), 50)),
                             headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
                             timeout=10)
    assert response.status_code == 201, response.text
    assert response.json()["document"]["answer"] == document["answer"]
