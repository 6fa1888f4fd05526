"""A minimal SMTP server on 127.0.0.1 for tests: enough of RFC 5321 for smtplib.

Standard library only (socketserver), run in a thread; it keeps what it receives and
can refuse chosen recipients.
"""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass, field


@dataclass
class Received:
    mail_from: str
    rcpt_to: list[str]
    data: bytes


@dataclass
class SmtpSink:
    refuse: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)

    def __enter__(self) -> SmtpSink:
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                self.reply("220 sink ESMTP")
                mail_from, rcpt_to = "", []
                while line := self.rfile.readline():
                    command = line.decode("ascii", "replace").strip()
                    verb = command[:4].upper()
                    if verb == "EHLO":
                        self.reply("250-sink")
                        self.reply("250 8BITMIME")
                    elif verb == "HELO" or verb in ("NOOP", "RSET"):
                        if verb == "RSET":
                            mail_from, rcpt_to = "", []
                        self.reply("250 OK")
                    elif verb == "MAIL":
                        mail_from = command.partition(":")[2].split()[0].strip("<>")
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        to = command.partition(":")[2].strip().strip("<>")
                        if to in sink.refuse:
                            self.reply("550 no such mailbox")
                        else:
                            rcpt_to.append(to)
                            self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 go on")
                        lines = []
                        while (data := self.rfile.readline()) not in (b".\r\n", b""):
                            lines.append(data[1:] if data.startswith(b"..") else data)
                        data = b"".join(lines).replace(b"\r\n", b"\n")
                        sink.received.append(Received(mail_from, rcpt_to, data))
                        mail_from, rcpt_to = "", []
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
