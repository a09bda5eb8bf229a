#!/usr/bin/env python3
"""bench/hop.py - a TCP proxy that holds every chunk it forwards for DELAY_MS,
each way: PostgreSQL a network hop away (DELAY_MS 0.5 makes a round trip 1 ms
longer), on a machine without netem.  Used by bench/profile-pg (PG_HOP_MS).

usage: hop.py LISTEN_PORT TARGET_PORT DELAY_MS   (both on 127.0.0.1)
"""
import asyncio
import sys


async def pipe(reader, writer, delay):
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            await asyncio.sleep(delay)
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main(listen, target, delay):
    async def handle(client_r, client_w):
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pipe(client_r, server_w, delay), pipe(server_r, client_w, delay))

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000))
