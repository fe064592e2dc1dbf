"""``probe cluster``: the CA's health on the cluster side, check by check.

Rule: a check the identity may not run (403) is ``skipped`` with the reason,
never a crash; the worst status decides the exit code. The CA's Secret is
read as metadata only: its private key never leaves the cluster. What the
API server answers is untrusted: an object of the wrong shape makes its check
``error``, saying which field holds what; its strings are clipped in messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from mqtt_tls_probe import aio
from mqtt_tls_probe.adapters.cluster import (
    METADATA_ONLY,
    ApiError,
    ClusterClient,
    configmap_failure,
    find_trust_configmap,
)
from mqtt_tls_probe.config import ClusterOptions
from mqtt_tls_probe.core.certinfo import days_left, is_quickstart_ca, name_of
from mqtt_tls_probe.core.moments import iso
from mqtt_tls_probe.core.trust_bundle import bundle_from_configmap, clip, json_type
from mqtt_tls_probe.errors import ErrorKind, ProbeError
from mqtt_tls_probe.model import Check, CheckStatus, ClusterReport, TrustBundle

_LATER = ("ca-expiry", "quickstart-ca", "ca-secret", "issuer")  # the checks after trust-bundle


def run_cluster_checks(
    options: ClusterOptions, timeout: float, now: datetime | None = None
) -> ClusterReport:
    moment = now or datetime.now(UTC)
    namespace = options.namespace
    try:
        client = ClusterClient(options, timeout)
    except ProbeError as error:
        checks = [Check("trust-bundle", CheckStatus.ERROR, error.message, error.hint)]
        checks += [_skipped(name, "the cluster cannot be reached") for name in _LATER]
        return ClusterReport("", namespace, tuple(checks))
    try:
        return ClusterReport(client.origin, namespace, tuple(_run(client, options, moment)))
    finally:
        client.close()


def _run(client: ClusterClient, options: ClusterOptions, moment: datetime) -> list[Check]:
    namespace = options.namespace
    checks = []
    anchors: tuple[x509.Certificate, ...] | None = None
    try:
        bundle = _read_bundle(client, options)
    except ApiError as error:
        problem = configmap_failure(error, namespace)
        # A 403 means "may not look", not "broken": skipped, with the reason.
        status = CheckStatus.SKIPPED if error.status == 403 else CheckStatus.ERROR
        checks.append(Check("trust-bundle", status, problem.message, problem.hint))
        if error.status != 403:  # 401, or a failing API server: nothing more can be read
            checks += [_skipped(name, "the cluster cannot be reached") for name in _LATER]
            return checks
    except ProbeError as error:
        checks.append(Check("trust-bundle", CheckStatus.ERROR, error.message, error.hint))
        if error.kind is ErrorKind.CLUSTER_UNREACHABLE:
            checks += [_skipped(name, "the cluster cannot be reached") for name in _LATER]
            return checks
    else:
        anchors = bundle.certificates
        plural = "s" if len(anchors) > 1 else ""
        note = f" ({bundle.note})" if bundle.note else ""
        checks.append(
            Check(
                "trust-bundle",
                CheckStatus.OK,
                f"{bundle.location}: {len(anchors)} CA{plural}{note}",
            )
        )
    if anchors is None:
        checks.append(_skipped("ca-expiry", "no trust bundle to read"))
        checks.append(_skipped("quickstart-ca", "no trust bundle to read"))
    else:
        checks += [_expiry_check(cert, moment) for cert in anchors]
        checks.append(_quickstart_check(anchors))
    checks.append(
        _guarded("ca-secret", lambda: _secret_check(client, namespace), namespace, "secrets")
    )
    checks.append(
        _guarded(
            "issuer", lambda: _issuer_check(client, namespace), namespace, "issuers.cert-manager.io"
        )
    )
    return checks


def _read_bundle(client: ClusterClient, options: ClusterOptions) -> TrustBundle:
    found = find_trust_configmap(client, options)
    return bundle_from_configmap(
        found.document, options.namespace, found.name, options.configmap_key, found.note
    )


def _skipped(name: str, reason: str) -> Check:
    return Check(name, CheckStatus.SKIPPED, f"skipped: {reason}")


def _guarded(name: str, check: Callable[[], Check], namespace: str, resource: str) -> Check:
    """Run a check; API answers that stop it become its status, transport failures too."""
    try:
        return check()
    except ApiError as error:
        if error.status == 403:
            return Check(
                name,
                CheckStatus.SKIPPED,
                f"skipped: this identity may not get {resource} in {namespace} ({error.message})",
                f"Grant 'get' on {resource} in {namespace} to run this check.",
            )
        return Check(name, CheckStatus.ERROR, f"the API server answered {error}")
    except ProbeError as error:
        return Check(name, CheckStatus.ERROR, error.message, error.hint)
    except WrongShape as wrong:
        return Check(
            name,
            CheckStatus.ERROR,
            f"the API server's answer has the wrong shape: {wrong}",
            "Something other than the Kubernetes API answers, or the resource was written "
            "by hand: look at it with kubectl get -o yaml.",
        )


class WrongShape(Exception):
    """A field of the API's JSON holds another kind of value than Kubernetes writes there."""


def _field_object(parent: dict[str, Any], field: str, where: str) -> dict[str, Any]:
    """``parent[field]`` when an object; absent or null is empty; anything else is wrong."""
    value = parent.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WrongShape(f"{where}.{field} is {json_type(value)}, not an object")
    return value


def _document(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WrongShape(f"the {what} is {json_type(value)}, not an object")
    return value


def _text(value: object) -> str:
    """A string from the cluster, for a message: clipped, never escaped here."""
    return clip(str(value))


def _expiry_check(cert: x509.Certificate, now: datetime) -> Check:
    left = days_left(cert, now)
    label = f"{name_of(cert.subject)} (expires {iso(cert.not_valid_after_utc)})"
    if now > cert.not_valid_after_utc:
        return Check(
            "ca-expiry",
            CheckStatus.ERROR,
            f"{label} has expired: every broker certificate it issued fails verification",
            "Re-create the CA (the quickstart CA lives 30 days) and restart the broker's "
            "certificate issuance; then fetch the new bundle with probe bundle --out ca.crt.",
        )
    if left < aio.EXPIRY_WARNING_DAYS:
        return Check(
            "ca-expiry",
            CheckStatus.WARNING,
            f"{label} expires in {left} day(s)",
            "Plan the CA's rotation, and how clients will get the new bundle.",
        )
    return Check("ca-expiry", CheckStatus.OK, f"{label}: {left} days left")


def _quickstart_check(anchors: tuple[x509.Certificate, ...]) -> Check:
    if any(is_quickstart_ca(c) for c in anchors):
        return Check(
            "quickstart-ca",
            CheckStatus.WARNING,
            "the bundle holds the Azure IoT Operations quickstart CA: for tests, "
            "not for production",
            "Bring your own issuer for production (Azure IoT Operations: cert-manager with "
            "your CA), and distribute its bundle to clients.",
        )
    return Check("quickstart-ca", CheckStatus.OK, "no quickstart CA in the bundle")


@dataclass(frozen=True)
class _CaLayout:
    """Where one release keeps the CA's key pair and the issuer that signs with it."""

    release: str
    issuer_kind: str
    issuer_path: str
    issuer_label: str
    secret_namespace: str
    secret_name: str


def _layouts(namespace: str) -> tuple[_CaLayout, ...]:
    issuers = "/apis/cert-manager.io/v1"
    return (
        _CaLayout(
            "quickstart",
            "Issuer",
            f"{issuers}/namespaces/{namespace}/issuers/{aio.CA_ISSUER}",
            f"{namespace}/{aio.CA_ISSUER}",
            namespace,
            aio.CA_SECRET,
        ),
        _CaLayout(
            "later releases",
            "ClusterIssuer",
            f"{issuers}/clusterissuers/{aio.LATER_CA_CLUSTER_ISSUER}",
            aio.LATER_CA_CLUSTER_ISSUER,
            aio.LATER_CA_SECRET_NAMESPACE,
            aio.LATER_CA_SECRET,
        ),
    )


def _first_found(
    client: ClusterClient, paths: list[str], accept: str = "application/json"
) -> tuple[int, dict[str, Any]] | None:
    """The first of ``paths`` that exists, as (index, object); None when all are 404."""
    for index, path in enumerate(paths):
        try:
            return index, client.get(path, accept=accept)
        except ApiError as error:
            if error.status != 404:
                raise
    return None


def _secret_check(client: ClusterClient, namespace: str) -> Check:
    layouts = _layouts(namespace)
    paths = [f"/api/v1/namespaces/{x.secret_namespace}/secrets/{x.secret_name}" for x in layouts]
    found = _first_found(client, paths, accept=METADATA_ONLY)
    if found is None:
        quickstart, later = layouts
        return Check(
            "ca-secret",
            CheckStatus.ERROR,
            f"the CA's key pair is missing: no Secret {namespace}/{quickstart.secret_name} "
            f"(nor {later.secret_namespace}/{later.secret_name} of later releases), so the "
            "issuer cannot sign",
            "Re-create the CA (reinstalling Azure IoT Operations does), or point the issuer "
            "at your own CA Secret.",
        )
    index, answer = found
    layout = layouts[index]
    metadata = _field_object(_document(answer, "Secret's metadata"), "metadata", "Secret")
    created = metadata.get("creationTimestamp")
    since = f", created {_text(created)}" if created else ""
    release = f", {layout.release}" if index else ""
    return Check(
        "ca-secret",
        CheckStatus.OK,
        f"{layout.secret_namespace}/{layout.secret_name} exists{since} "
        f"(read as metadata only{release})",
    )


def _issuer_check(client: ClusterClient, namespace: str) -> Check:
    layouts = _layouts(namespace)
    found = _first_found(client, [x.issuer_path for x in layouts])
    if found is None:
        quickstart, later = layouts
        return Check(
            "issuer",
            CheckStatus.ERROR,
            f"the cert-manager Issuer {quickstart.issuer_label} does not exist (nor the "
            f"ClusterIssuer {later.issuer_label} of later releases)",
            "Check that cert-manager runs and Azure IoT Operations is installed in this namespace.",
        )
    index, answer = found
    layout = layouts[index]
    issuer = _document(answer, layout.issuer_kind)
    what = f"the {layout.issuer_kind} {layout.issuer_label}"
    describe = f"kubectl describe {layout.issuer_kind.lower()} {layout.issuer_label.split('/')[-1]}"
    if layout.issuer_kind == "Issuer":
        describe += f" -n {namespace}"
    spec = _field_object(issuer, "spec", layout.issuer_kind)
    secret_name = _field_object(spec, "ca", f"{layout.issuer_kind}.spec").get("secretName")
    if secret_name != layout.secret_name:
        return Check(
            "issuer",
            CheckStatus.ERROR,
            f"{what} signs with the Secret {_text(repr(secret_name))}, not {layout.secret_name}",
            "The broker's certificates then come from another CA than the trust bundle's: "
            f"set spec.ca.secretName to {layout.secret_name}, or trust that CA.",
        )
    ready = _condition(issuer, "Ready", layout.issuer_kind)
    if ready is None:
        return Check(
            "issuer",
            CheckStatus.ERROR,
            f"{what} reports no Ready condition yet",
            f"Check cert-manager's log and: {describe}",
        )
    if ready.get("status") != "True":
        said = f"reason {_text(ready.get('reason'))}: {_text(ready.get('message'))}"
        return Check(
            "issuer",
            CheckStatus.ERROR,
            f"{what} is not Ready ({said})",
            f"Fix what the condition says; details: {describe}",
        )
    release = f", {layout.release}" if index else ""
    return Check(
        "issuer",
        CheckStatus.OK,
        f"{what} is Ready ({_text(ready.get('reason'))}), signing with {secret_name}{release}",
    )


def _condition(resource: dict[str, Any], kind: str, where: str) -> dict[str, Any] | None:
    """The condition of type ``kind`` in ``status.conditions``, every entry checked for shape."""
    conditions = _field_object(resource, "status", where).get("conditions")
    if conditions is None:
        return None
    if not isinstance(conditions, list):
        raise WrongShape(f"{where}.status.conditions is {json_type(conditions)}, not a list")
    for index, condition in enumerate(conditions):
        if not isinstance(condition, dict):
            raise WrongShape(
                f"{where}.status.conditions[{index}] is {json_type(condition)}, not an object"
            )
        if condition.get("type") == kind:
            return condition
    return None
