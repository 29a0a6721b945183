"""A real SMTP server on 127.0.0.1 (aiosmtpd) for the mail tests."""

import email.policy
import socket
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from aiosmtpd.controller import Controller


class ReceivedMessage(EmailMessage):
    """A message as the server got it, with its SMTP envelope."""

    content: bytes = b""  # the bytes as received, headers and all
    mail_from: str = ""
    rcpt_tos: tuple[str, ...] = ()
    tls: bool = False  # the session was encrypted (STARTTLS or smtps)
    login: tuple[str, str] | None = None  # the user and password it logged in with


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for a moment, at least)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps every message and refuses the addresses it is told to."""

    received: list[ReceivedMessage] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.casefold() in self.refused:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = BytesParser(ReceivedMessage, policy=email.policy.default).parsebytes(
            envelope.content
        )
        message.content = envelope.content
        message.mail_from = envelope.mail_from
        message.rcpt_tos = tuple(envelope.rcpt_tos)
        message.tls = server.transport.get_extra_info("ssl_object") is not None
        if session.auth_data:
            message.login = (session.auth_data.login.decode(), session.auth_data.password.decode())
        self.received.append(message)
        return f"250 2.0.0 Ok: queued as TEST{len(self.received)}"


class SMTPServer:
    """A running aiosmtpd server: its address, what it received, and who it refuses."""

    def __init__(self, **options) -> None:
        self.host = "127.0.0.1"
        self.handler = Recorder()
        for _ in range(5):  # another process may take the free port before we bind it
            self.port = free_port()
            self.controller = Controller(
                self.handler,
                hostname=self.host,
                port=self.port,
                server_hostname="mx.test",
                **options,
            )
            try:
                self.controller.start()
                break
            except OSError:
                continue
        else:
            raise RuntimeError("no free port for the test SMTP server")

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self) -> list[ReceivedMessage]:
        return self.handler.received

    def refuse(self, address: str) -> None:
        """Answer RCPT TO for this address with a 550."""
        self.handler.refused.add(address.casefold())

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def start_smtp_server():
    """Start SMTP servers with aiosmtpd options (tls_context, authenticator...); stop them after."""
    servers: list[SMTPServer] = []

    def start(**options) -> SMTPServer:
        servers.append(SMTPServer(**options))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server(start_smtp_server) -> SMTPServer:
    """A plain SMTP server on 127.0.0.1 that records every message."""
    return start_smtp_server()


@pytest.fixture
def smtp_app(app, smtp_server):
    """The test app, sending through `smtp_server`."""
    app.config["SMTP_URL"] = smtp_server.url
    return app
