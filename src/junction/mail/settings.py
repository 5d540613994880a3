"""Where services send e-mail: the SMTP settings of ``junction.config`` as one typed object."""

from __future__ import annotations

from dataclasses import dataclass

from junction.config import Config
from junction.config import load as load_config


@dataclass(frozen=True)
class SmtpSettings:
    """An SMTP server to deliver through, and how to talk to it."""

    host: str = "127.0.0.1"
    port: int = 1025
    tls: str = "NONE"  # NONE | STARTTLS | TLS (implicit TLS from the first byte)
    username: str | None = None
    password: str | None = None
    mail_from: str | None = None  # overrides every mailer's own sender address when set
    timeout: float = 10.0  # seconds for connecting and for each SMTP command

    @classmethod
    def from_config(cls, config: Config | None = None) -> SmtpSettings:
        """The ``smtp_*`` and ``mail_from`` settings (flag > environment > junction.toml > default)."""
        config = config or load_config()
        return cls(host=str(config.get("smtp_host")), port=int(config.get("smtp_port")),
                   tls=str(config.get("smtp_tls")), username=config.get("smtp_username"),
                   password=config.get("smtp_password"), mail_from=config.get("mail_from"))
