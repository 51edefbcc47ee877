"""Inside the setup's sandbox: 127.0.0.1:PORT → the egress proxy's Unix socket (sandbox/egress.py).

Run as `python3 -c "<this file>" SOCKET PORT`: it listens, then detaches, so the command after it starts
only once the port is open. It imports nothing but the standard library and nothing of the sandbox
package, since it runs with the sandbox's interpreter. It ends with the sandbox.
"""

import asyncio
import os
import socket
import sys


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()


async def serve(listener, path):
    async def handle(reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(path)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        writer.close()
        up_writer.close()

    server = await asyncio.start_server(handle, sock=listener)
    await server.serve_forever()


def main():
    path, port = sys.argv[1], int(sys.argv[2])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    if os.fork():
        os._exit(0)  # the parent returns once the port listens; the child serves
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    asyncio.run(serve(listener, path))


if __name__ == "__main__":
    main()
