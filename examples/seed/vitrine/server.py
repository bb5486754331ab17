"""The seed's "vitrine" (the public front site), as a tiny standard-library HTTP server: it serves
public/ and says which container answered (vitrine1 or vitrine2)."""

from __future__ import annotations

import html
import os
import socket
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PORT = int(os.environ.get("PORT", "3001"))
PUBLIC = Path(__file__).with_name("public")


class Handler(SimpleHTTPRequestHandler):
    server_version = "seed-vitrine/0.1"

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] in ("/", "/index.html"):
            page = (PUBLIC / "index.html").read_text().replace("{{host}}", html.escape(socket.gethostname()))
            data = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif self.path == "/health":
            data = f"ok {socket.gethostname()}\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            super().do_GET()


if __name__ == "__main__":
    print(f"seed vitrine on :{PORT}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", PORT), partial(Handler, directory=str(PUBLIC))).serve_forever()
