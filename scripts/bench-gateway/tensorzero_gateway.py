"""Start TensorZero's HTTP gateway for scripts/bench-gateway.sh, from the PyPI `tensorzero` wheel.

The wheel (`pip install tensorzero==2026.6.0`) embeds TensorZero's Rust gateway; the helper
`tensorzero._start_http_gateway` (the one behind `tensorzero.patch_openai_client`) serves it over
HTTP on a free loopback port, on the extension's own Rust threads (no Python on the request path).

Usage: python tensorzero_gateway.py CONFIG.toml URL_FILE
Writes the OpenAI-compatible base URL (e.g. http://127.0.0.1:PORT/openai/v1) to URL_FILE, then
serves until SIGTERM or SIGINT. Exit status 1 if the gateway cannot start.
"""

import signal
import sys

import tensorzero


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    config, url_file = sys.argv[1], sys.argv[2]
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        gateway = tensorzero._start_http_gateway(
            config_file=config,
            clickhouse_url=None,
            postgres_url=None,
            valkey_url=None,
            async_setup=False,
        )
    except Exception as e:  # the extension raises its own error types
        print(f"tensorzero gateway did not start: {e}", file=sys.stderr)
        return 1
    with open(url_file, "w") as f:
        f.write(gateway.base_url)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    gateway.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
