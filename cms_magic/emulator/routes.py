"""Which handler answers a request on the emulator's one port: :class:`Routes`.

By the request's head (method, path, query, headers), in this order:

==============================================  =============================================
``/_emulator/...``                              the admin endpoints (:mod:`~.admin`; the
                                                server answers them itself)
``/latest/...``                                 instance metadata (:class:`~.endpoints.MetadataEmulator`)
``/credentials``                                the credentials URI (:class:`~.endpoints.CredentialsUriEmulator`)
``GET|POST /`` with ``Action=`` in the query,   the OpenAPI front (:class:`~.openapi.ActionTable`):
header ``x-acs-action``, or a form body         ``AssumeRole``, ``AssumeRoleWithOIDC``
                                                (:class:`~.sts.StsEmulator`), and what else is
                                                registered (:meth:`Routes.register`,
                                                :meth:`Routes.register_signed`)
anything else                                   the upload path (:class:`~.service.Emulator`)
==============================================  =============================================

All handlers share the upload handler's clock, its accepted keys (the STS verifies their
signatures) and its :class:`~cms_magic.emulator.minted.MintedRegistry`, so a key minted by
any of them signs uploads and chained AssumeRole calls until it expires. Only uploads go to
the request log and meet injected faults; the other handlers count their answers
(:meth:`Routes.minted`). :meth:`Routes.handle_request` serves every route but admin to
``httpx.MockTransport`` for in-process tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit

import httpx

from cms_magic.emulator.admin import ADMIN_PREFIX
from cms_magic.emulator.endpoints import (
    CREDENTIALS_URI_PATH,
    IMDS_PREFIX,
    CredentialsUriEmulator,
    MetadataEmulator,
)
from cms_magic.emulator.minted import DEFAULT_LIFETIME_SECONDS, Minted, check_lifetime
from cms_magic.emulator.openapi import (
    ActionTable,
    Handler,
    Headers,
    error_response,
    names_action,
    text_response,
)
from cms_magic.emulator.openapi_cms import ACTIONS as CMS_ACTIONS
from cms_magic.emulator.openapi_cms import CmsHandler
from cms_magic.emulator.service import Emulator, EmulatorResponse
from cms_magic.emulator.store import EventStore
from cms_magic.emulator.sts import STS_ACTIONS, StsEmulator
from cms_magic.emulator.verify import NonceLedger, OpenApiVerifier, SignedAction
from cms_magic.errors import ConfigError

__all__ = ["DEFAULT_METADATA_ROLE", "MintedCounts", "Route", "Routes"]

Route = Literal["admin", "metadata", "credentials", "openapi", "upload"]
#: The RAM role the instance metadata serves unless told otherwise.
DEFAULT_METADATA_ROLE: Final = "EcsRamRoleDemo"


@dataclass(frozen=True)
class MintedCounts:
    """What the credential handlers minted and answered, at one moment.

    ``credentials``: every triple minted, oldest first (reprs masked). The counts are
    successful answers: ``assume_role`` and ``assume_role_with_oidc`` (STS),
    ``credentials_uri``, ``metadata`` (credentials from the instance metadata) and
    ``metadata_tokens`` (IMDSv2 tokens); ``*_refused`` count the error answers.
    ``len()`` is the number of triples minted.
    """

    credentials: tuple[Minted, ...]
    assume_role: int
    assume_role_with_oidc: int
    credentials_uri: int
    metadata: int
    metadata_tokens: int
    sts_refused: int
    credentials_uri_refused: int
    metadata_refused: int

    @property
    def sts(self) -> int:
        """STS calls answered with credentials (``AssumeRole`` + ``AssumeRoleWithOIDC``)."""
        return self.assume_role + self.assume_role_with_oidc

    def __len__(self) -> int:
        return len(self.credentials)


def _lifetime(seconds: float) -> float:
    try:
        return check_lifetime(seconds)
    except ValueError:
        raise ConfigError(
            "must be a number of seconds > 0", option="sts_lifetime", value=seconds
        ) from None


class Routes:
    """The handlers behind one port and the rule choosing among them (see the module).

    ``sts_lifetime`` (seconds) is how long minted credentials live (STS, URI and metadata
    alike; an AssumeRole's ``DurationSeconds`` may ask for less); ``metadata_v1`` lets the
    instance metadata answer without an IMDSv2 token; ``metadata_role`` is its RAM role.
    """

    def __init__(
        self,
        emulator: Emulator,
        *,
        sts_lifetime: float = DEFAULT_LIFETIME_SECONDS,
        metadata_v1: bool = False,
        metadata_role: str = DEFAULT_METADATA_ROLE,
    ) -> None:
        lifetime = _lifetime(sts_lifetime)
        if not isinstance(metadata_role, str) or not metadata_role.strip() or "/" in metadata_role:
            raise ConfigError(
                "must be a RAM role name (no '/')", option="metadata_role", value=metadata_role
            )
        self.emulator = emulator

        def now() -> float:  # follows a clock set on the emulator later
            return emulator.clock()

        registry = emulator.registry
        self._now = now
        #: The nonces of every signed OpenAPI request verified here (replays are refused).
        self.nonces = NonceLedger()
        self.sts = StsEmulator(
            emulator.credentials,
            registry=registry,
            lifetime_seconds=lifetime,
            clock=now,
            nonces=self.nonces,
        )
        self.credentials_uri = CredentialsUriEmulator(
            registry=registry, lifetime_seconds=lifetime, clock=now
        )
        self.metadata = MetadataEmulator(
            metadata_role,
            registry=registry,
            lifetime_seconds=lifetime,
            allow_v1=metadata_v1,
            clock=now,
        )
        self.actions = ActionTable(clock=now)
        self.actions.register(self.sts, *STS_ACTIONS)
        self._register_cms_actions()

    def _register_cms_actions(self) -> None:
        """CloudMonitor's event actions (read-back and PutCustomEvent), answered from the
        emulator's store behind the signature check, when the store can answer queries."""
        store = self.emulator.store
        if not isinstance(store, EventStore):
            return  # a store that only counts (benchmarks) serves uploads alone
        for action, handler in CMS_ACTIONS.items():

            def answer(
                params: Mapping[str, str],
                now: float,
                key_id: str,
                handler: CmsHandler = handler,
            ) -> EmulatorResponse:
                return handler(params, store=store, now=now, record={"key_id": key_id})

            self.register_signed(answer, action)

    def __repr__(self) -> str:
        return (
            f"Routes(actions=[{', '.join(self.actions.actions)}], "
            f"lifetime={self.lifetime:g}s, metadata_v1={self.metadata.allow_v1})"
        )

    # ----------------------------------------------------------------- settings

    @property
    def lifetime(self) -> float:
        """Seconds that credentials minted from now on live."""
        return self.sts.lifetime_seconds

    def set_lifetime(self, seconds: float) -> None:
        """Make credentials minted from now on live ``seconds`` (a number > 0)."""
        lifetime = _lifetime(seconds)
        self.sts.lifetime_seconds = lifetime
        self.credentials_uri.lifetime_seconds = lifetime
        self.metadata.lifetime_seconds = lifetime

    def register(self, handler: Handler, *actions: str) -> None:
        """Answer these OpenAPI actions with ``handler`` (see :class:`ActionTable`)."""
        self.actions.register(handler, *actions)

    def register_signed(
        self,
        answer: Callable[[Mapping[str, str], float, str], EmulatorResponse],
        *actions: str,
    ) -> SignedAction:
        """Answer these actions with ``answer(params, now, key_id)`` once the request's
        signature is verified (the emulator's keys and minted ones, time, nonce); returns
        the :class:`~cms_magic.emulator.verify.SignedAction` (its ``calls``, ``refused``)."""
        handler = SignedAction(answer, self.verifier(), clock=self._now)
        self.actions.register(handler, *actions)
        return handler

    def verifier(self) -> OpenApiVerifier:
        """A signature verifier with this server's keys, minted keys and nonce ledger."""
        return OpenApiVerifier(
            self.emulator.credentials, self.emulator.registry, nonces=self.nonces
        )

    def minted(self) -> MintedCounts:
        """What has been minted and how many credential calls were answered, now."""
        sts, uri, imds = self.sts, self.credentials_uri, self.metadata
        return MintedCounts(
            credentials=tuple(self.emulator.registry.minted()),
            assume_role=sts.calls["AssumeRole"],
            assume_role_with_oidc=sts.calls["AssumeRoleWithOIDC"],
            credentials_uri=uri.calls,
            metadata=imds.calls,
            metadata_tokens=imds.token_calls,
            sts_refused=sts.refused,
            credentials_uri_refused=uri.refused,
            metadata_refused=imds.refused,
        )

    # ----------------------------------------------------------------- handling

    def route(self, method: str, target: str, headers: Headers) -> Route:
        """Which handler a request with this head goes to."""
        path = urlsplit(target).path
        if path.startswith(ADMIN_PREFIX):
            return "admin"
        if path.startswith(IMDS_PREFIX):
            return "metadata"
        if path == CREDENTIALS_URI_PATH:
            return "credentials"
        if names_action(method, target, headers):
            return "openapi"
        return "upload"

    def handle(self, method: str, target: str, headers: Headers, body: bytes) -> EmulatorResponse:
        """Answer one request, admin paths excepted (those are the server's)."""
        return self.answer(self.route(method, target, headers), method, target, headers, body)

    def answer(
        self, route: Route, method: str, target: str, headers: Headers, body: bytes
    ) -> EmulatorResponse:
        """Answer one request by the handler of ``route`` (from :meth:`route`)."""
        if route == "metadata":
            return self.metadata.handle(method, target, headers, body)
        if route == "credentials":
            return self.credentials_uri.handle(method, target, headers, body)
        if route == "openapi":
            return self.actions.handle(method, target, headers, body)
        if route == "admin":
            msg = "the admin endpoints are served by EmulatorServer, not in-process"
            return error_response(404, "NotFound", msg, self.emulator.clock())
        return self.emulator.handle(method, target, headers, body)

    def reject(
        self, route: Route, status: int, msg: str, *, headers: Headers = (), nbytes: int = 0
    ) -> EmulatorResponse:
        """Answer a request refused before its body was read, in its route's shape."""
        if route == "upload":
            return self.emulator.reject(status, msg, headers=headers, nbytes=nbytes)
        now = self.emulator.clock()
        if route == "metadata":
            return text_response(status, msg, now)
        return error_response(status, "InvalidParameter", msg, now)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """:meth:`handle` for ``httpx.MockTransport(routes.handle_request)``; uploads go
        through :meth:`Emulator.handle_request <cms_magic.emulator.service.Emulator.handle_request>`
        (its injected faults become httpx's exceptions)."""
        target = request.url.raw_path.decode("ascii")
        route = self.route(request.method, target, request.headers.multi_items())
        if route == "upload":
            return self.emulator.handle_request(request)
        body = request.read()
        answer = self.answer(route, request.method, target, request.headers.multi_items(), body)
        return httpx.Response(
            answer.status, headers=answer.headers, content=answer.body, request=request
        )
