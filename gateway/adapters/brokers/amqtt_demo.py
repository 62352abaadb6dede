# A demo-only MQTT broker inside the gateway process (amqtt), for machines where Mosquitto can't be had.
from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class DemoBroker:
    """amqtt in a background event loop. Pure Python: ~30x Mosquitto's CPU per message, no `$share`.

    Fine for trying the product on a laptop; production sites should install Mosquitto.
    """

    def __init__(
        self,
        port: int,
        bind: str = "127.0.0.1",
        password_file: Path | None = None,
        gateway_user: str = "hexiao-gateway",
    ) -> None:
        self.port = port
        self.bind = bind
        # With a password file (written by gateway.fleet), the same per-device rules as our Mosquitto.
        self.logins: Any = None
        if password_file is not None:
            from gateway.adapters.brokers.amqtt_rules import Logins

            self.logins = Logins(password_file, gateway_user)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "") else self.bind
        return f"mqtt://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._run, name="demo-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("demo broker did not start")
        if self._error is not None:
            raise RuntimeError(f"demo broker failed: {self._error}")

    def _run(self) -> None:
        from amqtt.broker import Broker

        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        plugins: dict[str, Any] = {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
        }
        if self.logins is not None:
            from gateway.adapters.brokers.amqtt_rules import plugin_config

            plugins = plugin_config(self.logins)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.bind}:{self.port}"}},
            "plugins": plugins,
        }
        try:
            self._broker = Broker(config, loop=self._loop)
            self._loop.run_until_complete(self._broker.start())
        except BaseException as err:  # reported to start()
            self._error = err
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def reload(self) -> None:
        """Re-read the password file and drop connected clients whose login is gone (like SIGHUP)."""
        if self.logins is None or self._loop is None or self._broker is None:
            return
        self.logins.load()
        fut = asyncio.run_coroutine_threadsafe(self._drop_unknown(), self._loop)
        try:
            fut.result(5)
        except Exception:
            log.warning("demo broker could not drop revoked clients")

    async def _drop_unknown(self) -> None:
        for client_id, (session, handler) in list(self._broker._sessions.items()):
            user = getattr(session, "username", None)
            if user and not self.logins.known(user) and handler is not None:
                log.info("demo broker: dropping %s (login revoked)", client_id)
                await handler.handle_connection_closed()
                await handler.stop()

    def stop(self) -> None:
        if self._loop is None or self._broker is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        try:
            fut.result(5)
        except Exception:
            log.warning("demo broker did not shut down cleanly")
        self._loop.call_soon_threadsafe(self._loop.stop)
