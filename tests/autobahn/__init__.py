"""The Autobahn|Testsuite conformance harness: fuzzing server runner, mint client, HTTP/2 relay.

The fuzzing server (Python 2.7, installed by ``tools/setup_autobahn.sh``) speaks
HTTP/1.1 only; HTTP/2 runs go through ``relay.H2WebSocketRelay``, which turns
RFC 8441 extended CONNECT streams into HTTP/1.1 upgrades.
"""
