"""A TCP proxy that holds every chunk it forwards for a while: PostgreSQL as if it were on
another machine, for measuring what round trips cost when they are not on loopback.

    .venv/bin/python bench/latency_proxy.py --delay-ms 0.25 &        # listens on 6543
    .venv/bin/python bench/ingest_decide.py --backend postgres --only single-c8 \\
        --pg-url postgresql+psycopg://postgres@127.0.0.1:6543/postgres

The delay is added in each direction, so a round trip gains at least twice it, and more: the
proxy is a Python process on the same cores, and asyncio's timers are not sub-millisecond.
Compare two setups through the same proxy, not a proxied figure with a direct one.
"""

from __future__ import annotations

import argparse
import asyncio


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    try:
        while data := await reader.read(65536):
            await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def _serve(listen: int, target: tuple[str, int], delay: float) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*target)
        await asyncio.gather(_pipe(client_r, server_w, delay), _pipe(server_r, client_w, delay))

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=int, default=6543)
    parser.add_argument("--target", default="127.0.0.1:5432", help="host:port to forward to")
    parser.add_argument("--delay-ms", type=float, default=0.25, help="added in each direction")
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    asyncio.run(_serve(args.listen, (host, int(port)), args.delay_ms / 1000))


if __name__ == "__main__":
    main()
