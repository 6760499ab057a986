"""The OTA errors: each a stable code, a message naming the reason, and an exit code of ``talkerd-ota``.

Codes are grouped by exit code, so a script can react to the kind of failure without parsing text:

| exit | errors |
|---|---|
| 1  | the bundle is valid but refused here: ``not_newer``, ``expired``, ``incompatible``; ``trial_failed``; ``no_release`` (nothing to roll back to) |
| 2  | usage |
| 65 | the bundle is not what it was signed as: ``bad_format``, ``truncated``, ``unsigned``, ``bad_signature``, ``bad_manifest``, ``hash_mismatch``, ``size_mismatch``, ``missing_file``, ``extra_file``, ``too_large`` |
| 69 | ``build_failed`` (TensorRT engines could not be built on the device) |
| 73 | ``no_space`` (too little free disk, or the disk filled while staging) |
| 74 | a file could not be read or written (the message names it) |
| 75 | temporary: ``locked`` (another installer runs), ``download_failed`` |
| 77 | no permission for a file of the store or the bundle (run as the store's owner, e.g. talkerd) |
| 78 | ``config_invalid``, ``keys_invalid``, ``store_invalid`` |
"""
from __future__ import annotations

from ..errors import ExitCode, TalkerError


class OtaExitCode(ExitCode):
    """``talkerd-ota``'s exit codes beyond the project's own (sysexits.h numbers)."""

    BAD_BUNDLE = 65  # EX_DATAERR
    NO_SPACE = 73  # EX_CANTCREAT
    IO_ERROR = 74  # EX_IOERR
    TEMPORARY = 75  # EX_TEMPFAIL
    NO_PERMISSION = 77  # EX_NOPERM


class OtaError(TalkerError):
    """Base of the OTA errors."""

    code = "ota_error"
    exit_code = ExitCode.FAILURE


class BundleRejected(OtaError):
    """The bundle is damaged, forged or not what its signed manifest says."""

    code = "bad_bundle"
    exit_code = OtaExitCode.BAD_BUNDLE


class PolicyRefused(OtaError):
    """A genuine bundle this device must not install (not newer, expired, incompatible)."""

    code = "refused"
    exit_code = ExitCode.FAILURE


class TrialFailed(OtaError):
    """The new release did not pass its trial; the previous one is active again."""

    code = "trial_failed"
    exit_code = ExitCode.FAILURE


class NoRelease(OtaError):
    """There is no kept release to roll back to (or not the one asked for)."""

    code = "no_release"
    exit_code = ExitCode.FAILURE


class NoSpace(OtaError):
    """Too little free disk for the new release beside the running one."""

    code = "no_space"
    exit_code = OtaExitCode.NO_SPACE


class Locked(OtaError):
    """Another installer holds the store's lock."""

    code = "locked"
    exit_code = OtaExitCode.TEMPORARY


class DownloadFailed(OtaError):
    """The bundle could not be fetched (network, server); a partial download is kept for a resume."""

    code = "download_failed"
    exit_code = OtaExitCode.TEMPORARY


class BuildFailed(OtaError):
    """TensorRT engines could not be built on the device."""

    code = "build_failed"
    exit_code = ExitCode.UNAVAILABLE


class OtaConfigError(OtaError):
    """The OTA config, a key file or the trust root is unreadable or invalid."""

    code = "config_invalid"
    exit_code = ExitCode.CONFIG


class StoreError(OtaError):
    """The release store is in a state the installer cannot work from (the message says what)."""

    code = "store_invalid"
    exit_code = ExitCode.CONFIG
