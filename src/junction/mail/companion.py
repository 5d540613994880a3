"""The development mail sink as a system's companion: systems that send e-mail declare
``System(companions=[MAIL_SINK])``, and `junction run` serves the sink in its process (SMTP on ``smtp_port``,
the page and the Mailpit-compatible API on ``mail_sink_port``) while `junction up` runs `junction mail-sink`
beside the services. Tests start their own sink instead."""

from __future__ import annotations

from pathlib import Path

from junction.runtime import Companion


async def _serve(data_dir: Path) -> None:
    """Serve a sink keeping its mails under ``data_dir/mail`` until cancelled."""
    from junction.mail.sink import MailSink

    await MailSink.from_config(data_dir=data_dir / "mail").serve()


MAIL_SINK = Companion("mail-sink", _serve, lambda data_dir: ["mail-sink", "--data-dir", str(data_dir / "mail")])
