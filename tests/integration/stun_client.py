"""A minimal STUN Binding client (RFC 8489), independent of turnkey's codec.

Used by the integration tests as a second opinion next to coturn's tools, and
for TCP and TLS, which turnutils_stunclient does not speak.
"""

import binascii
import os
import socket
import ssl
import struct

MAGIC = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
XOR_MAPPED_ADDRESS = 0x0020
FINGERPRINT = 0x8028
FINGERPRINT_XOR = 0x5354554E


def build_binding(txid=None, fingerprint=True, extra_attrs=b""):
    txid = txid or os.urandom(12)
    body = extra_attrs
    length = len(body) + (8 if fingerprint else 0)
    msg = struct.pack("!HHI", BINDING_REQUEST, length, MAGIC) + txid + body
    if fingerprint:
        crc = binascii.crc32(msg) ^ FINGERPRINT_XOR
        msg += struct.pack("!HHI", FINGERPRINT, 4, crc & 0xFFFFFFFF)
    return txid, msg


def parse_response(data, txid):
    """Returns {'mapped': (ip, port), 'attrs': {type: value}} or raises ValueError."""
    if len(data) < 20:
        raise ValueError("short response")
    mtype, length, cookie = struct.unpack("!HHI", data[:8])
    if cookie != MAGIC or data[8:20] != txid:
        raise ValueError("cookie or transaction id mismatch")
    if 20 + length != len(data):
        raise ValueError("length mismatch")
    attrs = {}
    pos = 20
    while pos + 4 <= len(data):
        atype, alen = struct.unpack("!HH", data[pos:pos + 4])
        value = data[pos + 4:pos + 4 + alen]
        if atype == FINGERPRINT:
            want = binascii.crc32(data[:pos]) ^ FINGERPRINT_XOR
            if struct.unpack("!I", value)[0] != want & 0xFFFFFFFF:
                raise ValueError("bad FINGERPRINT")
        attrs.setdefault(atype, value)
        pos += 4 + ((alen + 3) & ~3)
    result = {"type": mtype, "attrs": attrs}
    xma = attrs.get(XOR_MAPPED_ADDRESS)
    if xma is not None:
        family, xport = struct.unpack("!xBH", xma[:4])
        port = xport ^ (MAGIC >> 16)
        if family == 1:
            ip = socket.inet_ntop(socket.AF_INET,
                                  struct.pack("!I", struct.unpack("!I", xma[4:8])[0] ^ MAGIC))
        else:
            key = struct.pack("!I", MAGIC) + txid
            ip = socket.inet_ntop(socket.AF_INET6, bytes(a ^ b for a, b in zip(xma[4:20], key)))
        result["mapped"] = (ip, port)
    return result


def binding_udp(host, port, timeout=2.0, fingerprint=True, family=socket.AF_INET):
    txid, msg = build_binding(fingerprint=fingerprint)
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        s.send(msg)
        try:
            data = s.recv(2048)
        except socket.timeout as e:
            raise TimeoutError("no answer") from e
        result = parse_response(data, txid)
        result["local"] = s.getsockname()[:2]
        return result


def _read_frame(sock):
    buf = b""
    while len(buf) < 20:
        chunk = sock.recv(20 - len(buf))
        if not chunk:
            raise ValueError("connection closed")
        buf += chunk
    length = struct.unpack("!H", buf[2:4])[0]
    while len(buf) < 20 + length:
        chunk = sock.recv(20 + length - len(buf))
        if not chunk:
            raise ValueError("connection closed")
        buf += chunk
    return buf


def binding_stream(host, port, use_tls=False, timeout=3.0, cafile=None, count=1):
    """Sends `count` Binding requests on one TCP/TLS connection; returns the results."""
    raw = socket.create_connection((host, port), timeout=timeout)
    sock = raw
    if use_tls:
        ctx = ssl.create_default_context(cafile=cafile)
        if cafile is None:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(raw, server_hostname="localhost")
    try:
        results = []
        for _ in range(count):
            txid, msg = build_binding()
            sock.sendall(msg)
            result = parse_response(_read_frame(sock), txid)
            result["local"] = sock.getsockname()[:2]
            if use_tls:
                result["tls_version"] = sock.version()
            results.append(result)
        return results
    finally:
        sock.close()
