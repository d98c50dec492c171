"""Alibaba Cloud OpenAPI calls (read-back, STS): the ACS3-HMAC-SHA256 and RPC v2 signers
as pure steps (:mod:`cms_magic.openapi.signing`). Nothing here does I/O at import."""

from cms_magic.openapi.signing import (
    CredentialsLike,
    StaticCredentials,
    acs3_headers,
    anonymous_rpc_query,
    rpc_query,
)

__all__ = [
    "CredentialsLike",
    "StaticCredentials",
    "acs3_headers",
    "anonymous_rpc_query",
    "rpc_query",
]
