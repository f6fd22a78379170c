"""Outbound sends never reach this installation's own network, follow no redirect, stop at a
total deadline, read at most 64 KB and keep no word of the receiver's answer."""

import socket
import threading
import time

import pytest
from werkzeug import Response

from budgets.models import Delivery
from budgets.outbound import address_is_public
from budgets.services import deliveries_send_due, rules_evaluate

from .helpers import NOW, webhook_channel

pytestmark = pytest.mark.django_db


@pytest.fixture
def strict(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_IPS = False
    return settings


def _deliver(project, url, *, kind="webhook"):
    webhook_channel(project, url, kind=kind)
    rules_evaluate(project=project, now=NOW)
    deliveries_send_due(now=NOW)
    return Delivery.objects.get()


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "fe80::1",
    "fd00::1", "100.64.0.1", "224.0.0.1", "239.255.255.250", "ff02::1", "240.0.0.1", "255.255.255.255",
    "0.0.0.0", "::", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "2002:7f00:1::", "192.0.2.10",
])
def test_internal_multicast_and_reserved_addresses_are_not_public(address):
    assert not address_is_public(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_ordinary_internet_addresses_are_public(address):
    assert address_is_public(address)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_a_webhook_to_this_machine_is_refused_after_dns_and_nothing_is_sent(project, firing, httpserver, strict,
                                                                            host):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    delivery = _deliver(project, f"http://{host}:{httpserver.port}/hook")
    assert (delivery.status, delivery.permanent) == ("failed", True)
    assert delivery.last_error.startswith(f"refused: {host.strip('[]')} resolves to ")
    assert "WEBHOOK_ALLOW_PRIVATE_IPS" in delivery.last_error
    assert httpserver.log == []


def test_the_cloud_metadata_address_is_refused_before_any_connection(project, firing, strict):
    delivery = _deliver(project, "http://169.254.169.254/latest/meta-data/")
    assert (delivery.status, delivery.permanent) == ("failed", True)
    assert delivery.last_error.startswith("refused: 169.254.169.254 resolves to 169.254.169.254")


def test_the_allow_setting_lets_an_on_premise_receiver_through(project, firing, httpserver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_IPS = True
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    delivery = _deliver(project, f"http://localhost:{httpserver.port}/hook")
    assert delivery.status == "sent" and len(httpserver.log) == 1


def test_a_redirect_is_not_followed_and_fails_for_good(project, firing, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data(
        "", status=307, headers={"Location": httpserver.url_for("/elsewhere")})
    httpserver.expect_request("/elsewhere").respond_with_data("ok")
    delivery = _deliver(project, httpserver.url_for("/hook"))
    assert (delivery.status, delivery.permanent) == ("failed", True)
    assert delivery.last_error == "HTTP 307 Temporary Redirect: redirects are not followed"
    assert [request.path for request, _ in httpserver.log] == ["/hook"]


def test_the_stored_error_is_the_status_and_a_short_reason_never_the_remote_body(project, firing, httpserver,
                                                                                  client, user):
    httpserver.expect_request("/hook", method="POST").respond_with_data("db password is hunter2", status=500)
    delivery = _deliver(project, httpserver.url_for("/hook"))
    assert delivery.last_error == "HTTP 500 Internal Server Error"
    client.force_login(user)
    page = client.get(f"/p/{project.slug}/channels/").content.decode()
    assert "HTTP 500 Internal Server Error" in page and "hunter2" not in page


def _trickle(stop: threading.Event, *, pieces: int, size: int, pause: float, sent: list):
    def body():
        for _ in range(pieces):
            if stop.is_set():
                return
            sent.append(size)
            yield b"x" * size
            if pause:
                time.sleep(pause)
    return lambda request: Response(body(), status=200, direct_passthrough=True)


class TricklingServer:
    """A real TCP server on 127.0.0.1 that reads the request, then answers its status line one
    byte every 0.2 s: no single read waits long, only the whole answer takes too long."""

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.stop, self.bytes_sent = threading.Event(), 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        connection, _ = self.listener.accept()
        with connection:
            connection.recv(65536)
            for byte in self.ANSWER:
                if self.stop.wait(0.2):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return
                self.bytes_sent += 1

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.listener.close()


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_total_deadline(project, firing, settings):
    settings.DELIVERY_TIMEOUT_SECONDS = 1
    server = TricklingServer()
    try:
        delivery = _deliver(project, server.url)
    finally:
        server.close()
    assert (delivery.status, delivery.permanent, delivery.last_error) == ("pending", False, "timed out")
    assert server.bytes_sent < len(TricklingServer.ANSWER)


def test_at_most_64_kb_of_the_answer_is_read(project, firing, httpserver):
    stop, sent = threading.Event(), []
    # 64 MB offered; the sender stops reading at 64 KB and hangs up, so the receiver can push
    # no more than that plus what the kernel's socket buffers hold.
    httpserver.expect_request("/hook", method="POST").respond_with_handler(
        _trickle(stop, pieces=1024, size=64 * 1024, pause=0, sent=sent))
    try:
        delivery = _deliver(project, httpserver.url_for("/hook"))
    finally:
        stop.set()
    assert delivery.status == "sent"
    assert sum(sent) < 1024 * 64 * 1024 / 2


@pytest.mark.parametrize("target", ["https://example.com/services/T/B/x", "http://hooks.slack.com/services/T/B/x",
                                    "https://hooks.slack.com.evil.example/services/x"])
def test_a_slack_channel_must_target_slacks_webhook_host(project, manage_client, strict, target):
    response = manage_client.post("/api/v1/channels", {"kind": "slack", "name": "#costs", "target": target},
                                  format="json")
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == "target" and "https://hooks.slack.com/" in error["message"]


def test_a_slack_channel_on_slacks_webhook_host_is_saved(project, manage_client, strict):
    response = manage_client.post("/api/v1/channels", {"kind": "slack", "name": "#costs",
                                                       "target": "https://hooks.slack.com/services/T0/B0/abc"},
                                  format="json")
    assert response.status_code == 201


def test_a_slack_channel_saved_elsewhere_before_the_rule_is_refused_at_send_time(project, firing, httpserver,
                                                                                  strict):
    delivery = _deliver(project, "https://example.com/services/x", kind="slack")
    assert (delivery.status, delivery.permanent) == ("failed", True)
    assert delivery.last_error == "a Slack target must start with https://hooks.slack.com/"


def _self_signed(tmp_path):
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_receivers_must_present_a_certificate_a_public_ca_signed(project, firing, tmp_path):
    import ssl

    from pytest_httpserver import HTTPServer

    cert_path, key_path = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server = HTTPServer(host="localhost", ssl_context=context)
    server.expect_request("/hook", method="POST").respond_with_data("ok")
    server.start()
    try:
        delivery = _deliver(project, f"https://localhost:{server.port}/hook")
    finally:
        server.clear()
        server.stop()
    assert (delivery.status, delivery.last_error) == ("pending", "TLS certificate of localhost not trusted")
    assert server.log == []  # the handshake failed: no request was sent


def test_a_target_with_an_impossible_port_fails_for_good_with_a_clear_error(project, firing):
    delivery = _deliver(project, "http://example.com:99999/hook")
    assert (delivery.status, delivery.permanent) == ("failed", True)
    assert delivery.last_error == "the URL's port is not a number from 0 to 65535"
