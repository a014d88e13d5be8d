"""Built-in: conversation recording with the project's S3 settings.

`"enable_recording": true` in a config, `--record`, or TUNE_AUTO_RECORDING=true turns on
`properties.enable_recording` and fills the storage settings from the environment:
TAVUS_RECORDING_S3_BUCKET, TAVUS_RECORDING_S3_REGION, TAVUS_RECORDING_ROLE_ARN (a secret).
TAVUS_RECORDING_STORAGE=flat sends the older flat recording_s3_* / aws_assume_role_arn fields
instead of the current `recording_storage` object.
"""
from __future__ import annotations

from harness_core import ConfigError, hookimpl

VARS = {"bucket_name": "TAVUS_RECORDING_S3_BUCKET", "bucket_region": "TAVUS_RECORDING_S3_REGION",
        "assume_role_arn": "TAVUS_RECORDING_ROLE_ARN"}
FLAT = {"bucket_name": "recording_s3_bucket_name", "bucket_region": "recording_s3_bucket_region",
        "assume_role_arn": "aws_assume_role_arn"}


def wants_recording(config: dict, env) -> str | None:
    """What turned recording on (a key, or TUNE_AUTO_RECORDING and where it was set), or None when off.

    Looked at in order: --record / enable_recording, properties.enable_recording, TUNE_AUTO_RECORDING.
    An explicit false in the config wins over the environment; anything but true/false is an error.
    """
    for key, value in (("enable_recording", config.get("enable_recording")),
                       ("properties.enable_recording", (config.get("properties") or {}).get("enable_recording"))):
        if value is not None:
            if not isinstance(value, bool):
                raise ConfigError(f"{key}: {value!r} is not true or false",
                                  hint="write true or false, without quotes")
            return key if value else None
    return f"{env.where('TUNE_AUTO_RECORDING')}=true" if env.flag("TUNE_AUTO_RECORDING") else None


def storage_configured(properties: dict) -> bool:
    """True when the config itself already says where recordings go."""
    return bool((properties.get("recording_storage") or {}).get("bucket_name") or properties.get("recording_s3_bucket_name"))


@hookimpl
def harness_config_keys(kind):
    """`enable_recording` is a harness-only conversation key (sent as properties.enable_recording)."""
    return ["enable_recording"] if kind == "conversation" else None


@hookimpl
def harness_build_payload(kind, config, payload, context):
    """properties.enable_recording plus storage from the environment; missing settings are an error."""
    cause = wants_recording(config, context.env) if kind == "conversation" else None
    if cause is None:
        return None
    properties = payload.get("properties") or {}
    if storage_configured(properties):
        return {"properties": {"enable_recording": True}}
    values = {field: context.env.get(var) for field, var in VARS.items()}
    missing = [VARS[f] for f, v in values.items() if not v]
    if missing:
        raise ConfigError(f"recording is on ({cause}) but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                          "not set", hint=f"add them to {context.env.dotenv_path} or the environment (see .env.example), "
                                          "or turn recording off")
    if (context.env.get("TAVUS_RECORDING_STORAGE") or "").lower() == "flat":
        return {"properties": {"enable_recording": True, **{FLAT[f]: v for f, v in values.items()}}}
    return {"properties": {"enable_recording": True, "recording_storage": {"provider": "s3", **values}}}
