"""`darkroom serve --tls-keyfile K --tls-certfile C`: HTTPS and WSS on one port.

The certificate is a fresh self-signed one made here with `cryptography` (for 127.0.0.1,
as a SAN, so ordinary hostname checks pass); clients trust exactly that file, so a
connection that works proves the server presents it.
"""
import datetime
import ipaddress
import json
import os
import ssl
import subprocess

import pytest
import requests
import websocket
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_key():
    return ec.generate_private_key(ec.SECP256R1())


def write_key(key, path):
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return str(path)


def write_self_signed(key, path):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


@pytest.fixture
def tls_files(tmp_path):
    """(keyfile, certfile) of a self-signed certificate for 127.0.0.1."""
    key = make_key()
    return write_key(key, tmp_path / "key.pem"), write_self_signed(key, tmp_path / "cert.pem")


@pytest.fixture
def tls_server(start_server, tls_files):
    key, cert = tls_files
    s = start_server("--tls-keyfile", key, "--tls-certfile", cert)
    # verify= per request: a Session's own .verify loses to $REQUESTS_CA_BUNDLE.
    return s, cert


def run_serve(darkroom_bin, tmp_path, *args):
    """`darkroom serve` that is expected to refuse its arguments: (returncode, stderr)."""
    base = tmp_path / "refused"
    os.makedirs(base, exist_ok=True)
    p = subprocess.run([darkroom_bin, "serve", "--port", "0", "--base-directory", str(base),
                        *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stderr


def test_listening_line_says_https(tls_server):
    s, _ = tls_server
    assert s.url.startswith("https://127.0.0.1:")
    assert int(s.host_port.rsplit(":", 1)[1]) > 0


def test_https_answers_system_stats(tls_server):
    s, cert = tls_server
    r = requests.get(s.url + "/system_stats", verify=cert, timeout=30)
    assert r.status_code == 200
    body = r.json()
    assert "system" in body and isinstance(body["devices"], list)
    # Keep-alive over TLS: several requests on one session's connection.
    for _ in range(3):
        r = s.get("/api/queue", verify=cert)
        assert r.json() == {"queue_running": [], "queue_pending": []}


def test_server_presents_the_given_certificate(tls_server):
    s, cert = tls_server
    port = int(s.host_port.rsplit(":", 1)[1])
    served = ssl.get_server_certificate(("127.0.0.1", port))
    with open(cert) as f:
        assert ssl.PEM_cert_to_DER_cert(served) == ssl.PEM_cert_to_DER_cert(f.read())


def test_untrusted_client_is_refused_by_its_own_check(tls_server):
    s, _ = tls_server
    # The system CAs do not know the self-signed certificate.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(s.url + "/system_stats", verify=True, timeout=30)


def test_wss_greets_with_status(tls_server):
    s, cert = tls_server
    ws = websocket.create_connection("wss://" + s.host_port + "/ws?clientId=tls1", timeout=10,
                                     sslopt={"ca_certs": cert})
    msg = json.loads(ws.recv())
    assert msg["type"] == "status"
    assert msg["data"]["sid"] == "tls1"
    assert isinstance(msg["data"]["status"]["exec_info"]["queue_remaining"], int)
    ws.send(json.dumps({"type": "feature_flags", "data": {}}))
    assert json.loads(ws.recv())["type"] == "feature_flags"
    ws.close()
    # The server is still fine after a websocket came and went.
    assert s.get("/system_stats", verify=cert).status_code == 200


def test_plain_http_to_the_tls_port_fails(tls_server):
    s, cert = tls_server
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get("http://" + s.host_port + "/system_stats", timeout=10)
    with pytest.raises((OSError, websocket.WebSocketException)):
        websocket.create_connection("ws://" + s.host_port + "/ws", timeout=10)
    assert s.alive()
    assert s.get("/system_stats", verify=cert).status_code == 200


def test_bad_key_file_exits_with_a_clear_message(darkroom_bin, tmp_path, tls_files):
    _, cert = tls_files
    bad = tmp_path / "bad-key.pem"
    bad.write_text("this is not a key\n")
    rc, err = run_serve(darkroom_bin, tmp_path, "--tls-keyfile", str(bad), "--tls-certfile", cert)
    assert rc != 0
    # Names the flag and the file, and passes on OpenSSL's reason.
    assert "--tls-keyfile" in err and str(bad) in err and "(OpenSSL: " in err, err
    assert "listening on" not in err


def test_key_of_another_certificate_is_refused(darkroom_bin, tmp_path, tls_files):
    _, cert = tls_files
    other = write_key(make_key(), tmp_path / "other-key.pem")
    rc, err = run_serve(darkroom_bin, tmp_path, "--tls-keyfile", other, "--tls-certfile", cert)
    assert rc != 0
    # OpenSSL's "key values mismatch", or our "does not match".
    assert "--tls-keyfile" in err and "match" in err.lower(), err


def test_bad_certificate_and_missing_files_are_refused(darkroom_bin, tmp_path, tls_files):
    key, cert = tls_files
    rc, err = run_serve(darkroom_bin, tmp_path, "--tls-keyfile", key, "--tls-certfile", key)
    assert rc != 0 and "--tls-certfile" in err, err
    missing = str(tmp_path / "nope.pem")
    rc, err = run_serve(darkroom_bin, tmp_path, "--tls-keyfile", missing, "--tls-certfile", cert)
    assert rc != 0 and "cannot be read" in err and "No such file" in err, err


def test_one_flag_alone_is_refused(darkroom_bin, tmp_path, tls_files):
    key, cert = tls_files
    for args in (("--tls-keyfile", key), ("--tls-certfile", cert)):
        rc, err = run_serve(darkroom_bin, tmp_path, *args)
        assert rc != 0 and "must be given together" in err, err


def test_help_names_the_flags(darkroom_bin):
    out = subprocess.run([darkroom_bin, "serve", "--help"], capture_output=True, text=True,
                         timeout=30).stdout
    assert "--tls-keyfile" in out and "--tls-certfile" in out
