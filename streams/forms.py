"""Forms for a stream destination (one per transport's fields) and for a replay."""

from __future__ import annotations

import ssl
from datetime import date, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.utils import timezone

from outbound import http as outbound_http
from outbound import tls as outbound_tls

from .formats import FORMATS
from .models import StreamDestination, Transport

# The fields each transport asks for (beside name and format).
TRANSPORT_FIELDS: dict[str, tuple[str, ...]] = {
    Transport.SYSLOG: ("host", "port", "ca_certificate"),
    Transport.SPLUNK_HEC: ("url", "secret", "ca_certificate"),
    Transport.HTTPS: ("url", "ca_certificate"),
    Transport.S3: (
        "url",
        "bucket",
        "key_prefix",
        "region",
        "access_key_id",
        "secret",
        "ca_certificate",
    ),
}
# Credentials: never shown again; left empty when editing, the saved one is kept.
CREDENTIALS = ("secret", "access_key_id")


class DestinationForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What this destination is, e.g. Production SIEM.",
        error_messages={"required": "Name the destination, so you can tell it apart later."},
    )
    format = forms.ChoiceField(choices=(), help_text="How each event is written.")
    host = forms.CharField(
        max_length=253,
        help_text="The syslog receiver's host name (its TLS certificate must name it).",
        error_messages={"required": "Give the syslog receiver's host name."},
    )
    port = forms.IntegerField(
        min_value=1,
        max_value=65535,
        initial=6514,
        help_text="Syslog over TLS listens on 6514 by convention.",
        error_messages={"required": "Give the receiver's port (6514 by convention)."},
    )
    url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        label="URL",
        help_text="An https:// URL.",
        error_messages={"required": "Give the receiver's https:// URL."},
    )
    bucket = forms.CharField(
        max_length=63,
        help_text="The bucket's name.",
        error_messages={"required": "Give the bucket's name."},
    )
    key_prefix = forms.CharField(
        max_length=200,
        label="Key prefix",
        required=False,
        help_text="Objects go under PREFIX/YYYY/MM/DD/HH/, one per batch (optional).",
    )
    region = forms.CharField(max_length=32, required=False, help_text="e.g. eu-central-1.")
    access_key_id = forms.CharField(
        max_length=128,
        label="Access key id",
        widget=forms.PasswordInput(render_value=False),
        help_text="Not shown again after saving.",
        error_messages={"required": "Give the access key id."},
    )
    secret = forms.CharField(
        max_length=200,
        label="HEC token",
        widget=forms.PasswordInput(render_value=False),
        help_text="Splunk's HTTP Event Collector token. Not shown again after saving.",
        error_messages={"required": "Give the HTTP Event Collector token."},
    )
    ca_certificate = forms.CharField(
        required=False,
        max_length=20_000,
        label="Private CA certificate (PEM, optional)",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=(
            "Only if the receiver's certificate is signed by your own authority; otherwise the "
            "usual public authorities are trusted."
        ),
    )

    def __init__(
        self,
        *args: Any,
        transport: str,
        instance: StreamDestination | None = None,
        **kwargs: Any,
    ) -> None:
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": instance.name,
                "format": instance.format,
                "host": instance.host,
                "port": instance.port,
                "url": instance.url,
                "ca_certificate": instance.ca_certificate,
                "bucket": instance.bucket,
                "key_prefix": instance.key_prefix,
                "region": instance.region,
            }
        super().__init__(*args, **kwargs)
        self.transport = transport
        self.instance = instance
        kept = {"name", "format", *TRANSPORT_FIELDS[transport]}
        for field in list(self.fields):
            if field not in kept:
                del self.fields[field]
        format_field = self.fields["format"]
        assert isinstance(format_field, forms.ChoiceField)
        format_field.choices = list(FORMATS.items())
        if transport == Transport.HTTPS:
            self.fields["url"].help_text = (
                "An https:// URL. Each batch is POSTed as JSON lines, signed with Standard "
                "Webhooks; the signing secret is shown once, after adding."
            )
        if transport == Transport.S3:
            self.fields["url"].label = "Endpoint URL"
            self.fields["url"].help_text = "e.g. https://s3.eu-central-1.amazonaws.com."
            self.fields["secret"].label = "Secret access key"
            self.fields["secret"].help_text = "Not shown again after saving."
            self.fields["secret"].error_messages["required"] = "Give the secret access key."
        if instance is not None:
            for name in CREDENTIALS:
                if name in self.fields:
                    # A saved credential is never shown: leave it empty to keep it.
                    self.fields[name].required = False
                    self.fields[name].help_text = "Leave empty to keep the saved one."

    def clean_host(self) -> str:
        host: str = self.cleaned_data["host"].strip().strip("[]").rstrip(".").lower()
        if not host or any(ch in host for ch in "/@ \t"):
            raise forms.ValidationError("Give a host name or IP address, without a scheme.")
        if host.count(":") == 1:
            raise forms.ValidationError("Give the port in its own field.")
        return host

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        problem = outbound_http.url_problem(url, allow_private=settings.STREAMS_ALLOW_PRIVATE)
        if problem:
            raise forms.ValidationError(problem)
        return url

    def clean_ca_certificate(self) -> str:
        pem: str = self.cleaned_data.get("ca_certificate", "").strip()
        if not pem:
            return ""
        try:
            ssl.create_default_context(cadata=pem)
        except (ssl.SSLError, ValueError):
            raise forms.ValidationError(
                "That is not a PEM certificate (-----BEGIN CERTIFICATE----- ...)."
            ) from None
        return pem + "\n"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        host, port = cleaned.get("host"), cleaned.get("port")
        if self.transport == Transport.SYSLOG and host and port:
            problem = outbound_tls.host_problem(
                host, port, allow_private=settings.STREAMS_ALLOW_PRIVATE
            )
            if problem:
                self.add_error("host", problem)
        return cleaned

    def changes(self) -> dict[str, Any]:
        """The destination's editable values from this form."""
        return {
            field: self.cleaned_data[field]
            for field in (
                "name",
                "format",
                "host",
                "port",
                "url",
                "ca_certificate",
                "bucket",
                "key_prefix",
                "region",
            )
            if field in self.cleaned_data
        }


class ReplayForm(forms.Form):
    since = forms.DateField(
        label="Send again from (UTC date)",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"required": "Choose the day to send events again from."},
    )

    def __init__(self, *args: Any, retention_days: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.earliest = timezone.now().date() - timedelta(days=retention_days)
        self.fields[
            "since"
        ].help_text = f"Any day from {self.earliest:%Y-%m-%d} (the start of retention) to today."

    def clean_since(self) -> date:
        since: date = self.cleaned_data["since"]
        if since < self.earliest:
            raise forms.ValidationError(
                f"Events before {self.earliest:%Y-%m-%d} are past retention and no longer kept."
            )
        if since > timezone.now().date():
            raise forms.ValidationError("Choose today or an earlier day.")
        return since
