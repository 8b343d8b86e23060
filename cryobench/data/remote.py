"""A bounded network check before anything remote is opened.

copick's portal backend retries a failed GraphQL query four times with exponential back-off
(about 1 + 2 + 4 s of sleeps plus jitter), and each try is itself retried three times by the
``gql`` HTTP transport; on a machine without a network a portal-backed root therefore takes
half a minute or more to fail, and where name resolution hangs instead of failing it takes far
longer. cryobench first opens one TCP connection to each remote host, with a hard deadline, and
reports an unreachable host as one :class:`~cryobench.errors.DataUnavailableError`.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterable
from urllib.parse import urlparse

from cryobench.errors import DataUnavailableError

__all__ = [
    "PORTAL_GRAPHQL_HOST",
    "PORTAL_S3_HOST",
    "PROBE_TIMEOUT_S",
    "probe",
    "require_reachable",
    "url_host",
]

PORTAL_GRAPHQL_HOST = "graphql.cryoetdataportal.czscience.com"
"""Host of the CryoET Data Portal GraphQL API (the ``cryoet-data-portal`` client's default)."""

PORTAL_S3_HOST = "cryoet-data-portal-public.s3.amazonaws.com"
"""Host of the portal's public S3 bucket (tomograms and annotation files)."""

PROBE_TIMEOUT_S = 3.0
"""Deadline for one host check (name resolution and TCP connect together), in seconds;
``CRYOBENCH_PROBE_TIMEOUT`` overrides it."""


def _timeout() -> float:
    try:
        return max(0.1, float(os.environ.get("CRYOBENCH_PROBE_TIMEOUT", PROBE_TIMEOUT_S)))
    except ValueError:
        return PROBE_TIMEOUT_S


def probe(host: str, port: int = 443, timeout: float | None = None) -> str | None:
    """None when a TCP connection to ``host:port`` opens within ``timeout`` seconds, else why not.

    Name resolution cannot be given a timeout, so the whole check runs in a daemon thread that
    is abandoned at the deadline.
    """
    timeout = _timeout() if timeout is None else float(timeout)
    result: list[str | None] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(None)
        except socket.gaierror as exc:
            result.append(f"cannot resolve {host} ({exc.strerror or exc})")
        except OSError as exc:
            result.append(f"cannot connect to {host}:{port} ({exc.strerror or exc})")

    worker = threading.Thread(target=connect, name=f"probe-{host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not result:
        return f"no answer from {host}:{port} within {timeout:g} s"
    return result[0]


def url_host(url: str) -> tuple[str, int] | None:
    """The (host, port) a URL reads from; None for local paths (``file://``, ``local://``,
    plain paths). ``s3://bucket/...`` is the bucket's virtual-hosted endpoint."""
    parsed = urlparse(str(url))
    scheme = parsed.scheme.lower()
    if scheme in ("", "file", "local") or len(scheme) == 1:  # "C:\\..." on Windows
        return None
    if scheme in ("s3", "s3a"):
        bucket = parsed.netloc
        return (f"{bucket}.s3.amazonaws.com" if bucket else "s3.amazonaws.com"), 443
    if scheme in ("http", "https"):
        if not parsed.hostname:
            return None
        return parsed.hostname, parsed.port or (443 if scheme == "https" else 80)
    if scheme in ("gs", "gcs"):
        return "storage.googleapis.com", 443
    if parsed.hostname:  # ssh://, sftp://, smb://...
        default = {"ssh": 22, "sftp": 22, "smb": 445}.get(scheme, 443)
        return parsed.hostname, parsed.port or default
    return None


def require_reachable(hosts: Iterable[tuple[str, int]], what: str,
                      path: str | os.PathLike[str] | None = None) -> None:
    """Check each (host, port) once; raise at the first unreachable one.

    Raises:
        DataUnavailableError: ``<what> needs the network: <reason>``.
    """
    seen: set[tuple[str, int]] = set()
    for host, port in hosts:
        if (host, port) in seen:
            continue
        seen.add((host, port))
        reason = probe(host, port)
        if reason is not None:
            raise DataUnavailableError(f"{what} needs the network: {reason}", path)


class quiet_logs:
    """Silence ``logging`` below ERROR inside the block.

    copick configures the root logger on import (a rich console handler at INFO), so its retry
    warnings and urllib3's would otherwise reach the terminal; library code never prints.
    """

    def __enter__(self) -> quiet_logs:
        import logging

        self._previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        return self

    def __exit__(self, *exc: object) -> None:
        import logging

        logging.disable(self._previous)


def config_hosts(data: dict, path: str | os.PathLike[str] | None = None) -> list[tuple[str, int]]:
    """The remote hosts a copick config (already parsed) reads from when it is opened.

    ``cryoet_data_portal``: the portal's GraphQL API and S3 bucket; any config: remote
    ``overlay_root`` / ``static_root`` / ``croissant_url`` / ``croissant_base_url``; an
    ``mlcroissant`` config with a local manifest: the manifest's ``copick:baseUrl`` when remote.
    """
    import json
    from pathlib import Path

    hosts: list[tuple[str, int]] = []
    if data.get("config_type") == "cryoet_data_portal":
        hosts += [(PORTAL_GRAPHQL_HOST, 443), (PORTAL_S3_HOST, 443)]
    for key in ("overlay_root", "static_root", "croissant_url", "croissant_base_url"):
        value = data.get(key)
        if isinstance(value, str) and (h := url_host(value)) is not None:
            hosts.append(h)
    url = data.get("croissant_url")
    if (data.get("config_type") == "mlcroissant" and isinstance(url, str)
            and url_host(url) is None and not data.get("croissant_base_url")):
        local = Path(url[len("file://"):] if url.startswith("file://") else url)
        try:
            base = json.loads(local.read_text(encoding="utf-8")).get("copick:baseUrl", "")
        except (OSError, ValueError, AttributeError):
            base = ""
        if isinstance(base, str) and (h := url_host(base)) is not None:
            hosts.append(h)
    return hosts


def check_config_reachable(data: dict, path: str | os.PathLike[str] | None = None) -> None:
    """:func:`require_reachable` for the hosts of a copick config (see :func:`config_hosts`).

    Raises:
        DataUnavailableError: a host does not answer within the probe deadline.
    """
    what = ("this CryoET Data Portal project" if data.get("config_type") == "cryoet_data_portal"
            else "this project's remote data")
    require_reachable(config_hosts(data, path), what, path)
