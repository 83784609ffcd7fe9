"""Exceptions raised by libeplb calls: one eplb.Error subclass per C status, plus InvalidTypeError
for arguments of the wrong type."""


class Error(Exception):
    """A libeplb call failed. `status` is the C eplb_status (int), `message` the library's
    message naming the offending value (eplb_last_error_message(), read in the same call)."""

    status = -1

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message

    def __str__(self):
        return self.message

    def __reduce__(self):
        # BaseException pickles self.args, (message,) alone, which __init__ cannot take back: an
        # eplb error raised in a worker process (multiprocessing, ProcessPoolExecutor) broke the
        # pool instead of reaching the caller. __dict__ keeps notes and other attributes.
        return type(self), (self.status, self.message), self.__dict__


class InvalidArgumentError(Error, ValueError):
    """EPLB_ERR_INVALID_ARGUMENT: a NULL, zero, out-of-range or inconsistent argument."""


class InvalidTypeError(InvalidArgumentError, TypeError):
    """An argument of the wrong type, refused by the binding before any C call: a float or str
    where an integer goes, complex, bool or object arrays where numbers go, None where a
    Placement or Tracker goes. Both an InvalidArgumentError (status EPLB_ERR_INVALID_ARGUMENT)
    and a TypeError, as numpy's AxisError is both a ValueError and an IndexError."""


class OutOfMemoryError(Error, MemoryError):
    """EPLB_ERR_OUT_OF_MEMORY."""


class BufferTooSmallError(Error, ValueError):
    """EPLB_ERR_BUFFER_TOO_SMALL: an output array is shorter than required."""


class InternalError(Error, RuntimeError):
    """EPLB_ERR_INTERNAL: a bug in libeplb; please report it with the message."""


class IOError(Error, OSError):  # noqa: A001 (named after the C status)
    """EPLB_ERR_IO: a file could not be opened, read, written or renamed.

    A subclass of the builtin OSError, so `except OSError` catches it. The library reports the
    path and the reason (e.g. "No such file or directory") in the message only: errno, strerror
    and filename are None. Named after the C status, it is left out of `from eplb import *`
    (where it would shadow Python's IOError, an alias of OSError): write `eplb.IOError`."""


class CorruptError(Error, ValueError):
    """EPLB_ERR_CORRUPT: damaged or inconsistent input data (snapshot, JSON)."""


class TruncatedError(CorruptError):
    """EPLB_ERR_TRUNCATED: input data ends before its declared size."""


class UnsupportedVersionError(Error):
    """EPLB_ERR_UNSUPPORTED_VERSION: a snapshot format this library does not read."""


class NoDeviceError(Error, RuntimeError):
    """EPLB_ERR_NO_DEVICE: built without CUDA, or no NVIDIA driver or GPU on this machine."""


class DeviceError(Error, RuntimeError):
    """EPLB_ERR_DEVICE: a CUDA call failed (the message names it)."""


class NoNcclError(Error, RuntimeError):
    """EPLB_ERR_NO_NCCL: NCCL could not be loaded, or the build has no NCCL support."""


class NcclError(Error, RuntimeError):
    """EPLB_ERR_NCCL: an NCCL call failed (the message names it)."""


class CancelledError(Error):
    """EPLB_ERR_CANCELLED: a plan stopped because the planner's PlanControl was cancelled (see
    eplb.PlanControl); nothing was returned and the planner stays usable. Not a subclass of
    asyncio's or concurrent.futures' CancelledError: a plan cancelled in an executor is the
    plan's failure, which asyncio would otherwise turn into the cancellation of the awaiting
    task."""


_BY_STATUS = {
    1: InvalidArgumentError,
    2: OutOfMemoryError,
    3: BufferTooSmallError,
    4: InternalError,
    5: IOError,
    6: CorruptError,
    7: TruncatedError,
    8: UnsupportedVersionError,
    9: NoDeviceError,
    10: DeviceError,
    11: NoNcclError,
    12: NcclError,
    13: CancelledError,
}


def _make_error(status, message):
    """Called by the native module with the status and the message of a failed call."""
    return _BY_STATUS.get(status, Error)(status, message)
