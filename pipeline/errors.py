"""The exception tree of Shorewatch.

::

    ShorewatchError
    ├── ConfigError                 bad settings, bad site or camera configuration
    │   ├── SiteError               a site folder that fails validation (carries every problem)
    │   └── ConsoleError            the operator console cannot start as configured
    │       └── ActionStoreError    its action store cannot be reached or does not answer in time
    ├── BrokerError                 Kafka cannot be reached or managed
    │   ├── BrokerUnreachable       KAFKA_BOOTSTRAP_SERVERS does not answer in time
    │   └── LocalKafkaError         the local broker cannot be fetched, formatted or started
    │       └── MissingToolError    Java or Maven is missing
    ├── InputError                  one bad input record (becomes a dead letter, never a crash)
    │   ├── NmeaError               a line that is not a valid AIS sentence
    │   └── FrameError              an unreadable or corrupt video frame
    ├── CameraError                 a camera that cannot be reached or misbehaves
    │   ├── CameraUnreachable       no TCP/RTSP/HTTP answer
    │   ├── CameraAuthError         wrong user or password
    │   └── OnvifFault              a SOAP fault from the device (carries code and reason)
    ├── RegistryError               the vessel registry refuses an operation
    │   ├── RegistryUnavailable     its database cannot be reached
    │   └── RegistryImportError     an import file that cannot be read at all
    └── ArchiveError                the history archive cannot be written or read
        ├── DiskFull                no space left; nothing committed
        └── QueryError              a history query that cannot run (bad range, coordinate, SQL)
"""

from __future__ import annotations


class ShorewatchError(Exception):
    """Base of every error Shorewatch raises on purpose."""


class ConfigError(ShorewatchError):
    """Settings, site or camera configuration that cannot be used."""


class SiteError(ConfigError):
    """A site folder that fails validation.

    :param problems: every problem found, as ``file: field: message`` lines
    """

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems) or "invalid site")


class BrokerError(ShorewatchError):
    """Kafka cannot be reached or managed."""


class BrokerUnreachable(BrokerError):
    """The configured bootstrap servers did not answer within the time limit."""


class LocalKafkaError(BrokerError):
    """The local development broker cannot be fetched, formatted or started."""


class MissingToolError(LocalKafkaError):
    """A program the local broker needs (java, mvn) is not installed."""


class InputError(ShorewatchError):
    """One bad input record; callers turn it into a dead letter.

    :param reason: short machine-readable code, e.g. ``bad_checksum``
    """

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class NmeaError(InputError):
    """A line that is not a valid AIS sentence."""


class FrameError(InputError):
    """An unreadable or corrupt video frame."""


class CameraError(ShorewatchError):
    """A camera that cannot be reached or misbehaves."""


class CameraUnreachable(CameraError):
    """No answer from the camera's RTSP or HTTP endpoint."""


class CameraAuthError(CameraError):
    """The camera refused the configured credentials."""


class OnvifFault(CameraError):
    """A SOAP fault returned by an ONVIF device.

    :param code: the fault code, e.g. ``ter:InvalidArgVal``
    """

    def __init__(self, code: str, reason: str):
        self.code = code
        self.reason = reason
        super().__init__(f"ONVIF fault {code}: {reason}")


class InferenceBusy(CameraError):
    """The shared detector's queue is full: the frame is not analysed (the camera counts it
    as behind and says so in its status)."""


class RegistryError(ShorewatchError):
    """The vessel registry refuses an operation."""


class RegistryUnavailable(RegistryError):
    """The registry's database cannot be reached (the pipeline goes on without it)."""


class RegistryImportError(RegistryError):
    """An import file that cannot be read at all (rows with problems are reported, not raised)."""


class ArchiveError(ShorewatchError):
    """The history archive cannot be written or read."""


class DiskFull(ArchiveError):
    """The archive's disk has no space left; nothing was committed."""


class QueryError(ArchiveError):
    """A history query that cannot run (bad range, bad coordinate, bad SQL)."""


class ConsoleError(ConfigError):
    """The operator console cannot start as configured (no user outside demo mode, a
    demo bound beyond 127.0.0.1, an unreadable users file)."""


class ActionStoreError(ConsoleError):
    """The console's action store (SQLite or PostgreSQL) cannot be reached, or a statement
    failed or ran past its deadline; the transaction is rolled back."""
