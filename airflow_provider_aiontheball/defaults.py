"""Every default value and stored key of the provider, in one place.

Constants flow one way: from here to the hooks, operators, sensors, triggers, the polling schedules
and the connection form (``get_provider_info.py`` reads its defaults from here). Kept in a module of
plain values: DAG files import the operators, which need these for their signatures, and must not pay
for anything else at every parse.
"""

from __future__ import annotations

# -- the connection ---------------------------------------------------------------------------------

DEFAULT_CONN_ID = "aiontheball_default"
CONN_TYPE = "aiontheball"
DEFAULT_BASE_URL = "https://aiontheball.nl/api/v1"
#: Seconds to wait for each response (connection extra ``timeout``).
DEFAULT_READ_TIMEOUT = 60
#: Seconds to wait for a TCP/TLS connection (connection extra ``connect_timeout``).
DEFAULT_CONNECT_TIMEOUT = 10
#: Retries of one request after a transient failure (connection extra ``retry_limit``).
DEFAULT_RETRY_LIMIT = 5
#: First backoff step; doubles per attempt (with jitter) up to :data:`DEFAULT_RETRY_MAX_WAIT`.
DEFAULT_RETRY_MIN_WAIT = 1.0
#: Cap of the backoff: a task should not sleep for minutes inside one call.
DEFAULT_RETRY_MAX_WAIT = 60.0
#: Largest JSON response read, in MiB once decompressed (connection extra ``max_response_mb``). A summary or an
#: events list is far smaller; a body that inflates to gigabytes must fail its request, not take the worker —
#: or the triggerer, with every wait in it — down with it.
DEFAULT_MAX_RESPONSE_MB = 64
#: A body larger than this is decoded in a worker thread, never on the triggerer's event loop.
PARSE_OFF_LOOP_BYTES = 256 * 1024
#: Most redirects a download follows (a tracking file served from a CDN); JSON endpoints follow none.
MAX_DOWNLOAD_REDIRECTS = 5
#: Connections per (event loop, base URL). Polls are short; 1,000 waiting triggers poll far less
#: than 32 at a time, and a burst queues for a free connection instead of opening hundreds.
DEFAULT_POOL_LIMIT = 32

#: Keep idle connections longer than the longest poll interval we use by default (60 s).
KEEPALIVE_SECONDS = 75.0
#: Seconds a loaded connection's settings are shared before the next trigger fetches them again.
SETTINGS_TTL_SECONDS = 60.0
#: Download chunk size for tracking files (20-500 MB): streamed, never held whole in memory.
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
#: Longest piece of a server's message or body quoted in an exception.
MAX_QUOTED_CHARS = 300

# -- keys stored in users' databases: renaming one loses what is stored under it --------------------

#: XCom keys pushed by the video tasks (besides ``return_value``, the video itself).
XCOM_VIDEO_ID = "video_id"
XCOM_GAME_NAME = "game_name"
#: What the create-video operator's pre-flight checks measured (``PreflightResult.as_dict()``; no URL query).
XCOM_PREFLIGHT = "preflight"
#: Read by the "AI on the Ball video" extra link.
XCOM_MP4_SOURCE = "mp4_source"
#: XCom key pushed by the create-analysis operator.
XCOM_ANALYSIS_ID = "analysis_id"
#: Task state store keys: the create operators' durable records, a reschedule-mode sensor's error streak.
STATE_KEY_VIDEO = "aiontheball_create_video"
STATE_KEY_ANALYSIS = "aiontheball_create_analysis"
STATE_KEY_POKE_ERRORS = "aiontheball_poke_errors"

#: Prefix of the cursor's key in the asset state store (stored in users' databases: never rename).
STATE_KEY_ANALYSIS_DONE = "aiontheball_analysis_done"
#: Version of the analysis-done cursor value stored under it ``{"version": 1, "handled": [ids...]}``.
CURSOR_VERSION = 1
#: The URI scheme of every asset of this provider.
SCHEME = "aiontheball"
#: Host of the documented API base URL ``https://aiontheball.nl/api/v1/``.
DEFAULT_HOST = "aiontheball.nl"

# -- waiting -----------------------------------------------------------------------------------------

#: First (and post-change) interval of the adaptive video schedule, in seconds.
DEFAULT_MIN_POLL_INTERVAL = 5.0
#: Cap of the adaptive schedule (the video sensor's ``poke_interval`` when it defers), in seconds.
DEFAULT_POLL_INTERVAL = 60.0
#: Growth of the interval per poll that sees no change.
DEFAULT_BACKOFF_FACTOR = 1.5
#: Longest interval between analysis polls: an analysis takes 2-6 hours.
DEFAULT_ANALYSIS_POLL_INTERVAL = 1800.0
#: Interval near an analysis's expected finish: bounds how late a finished analysis is noticed.
DEFAULT_ANALYSIS_MIN_POLL_INTERVAL = 45.0
#: Transient failures in a row a wait tolerates before giving up.
DEFAULT_MAX_CONSECUTIVE_ERRORS = 10
#: Seconds of uninterrupted transient failures a wait tolerates before giving up.
DEFAULT_ERROR_BUDGET_SECONDS = 900.0
#: Default limit of the create operator's ``wait_for_available``: downloading and preparing a full
#: match takes minutes, a slow source URL can take an hour or more.
DEFAULT_VIDEO_WAIT_TIMEOUT = 6 * 3600.0
#: Default limit of ``wait_for_completion``: the API's Quick Start says 2-6 hours.
DEFAULT_ANALYSIS_WAIT_TIMEOUT = 12 * 3600.0
#: How long a create operator keeps looking for what a POST of unknown outcome (lost response, 5xx)
#: may have created, counted from the POST: servers may commit, or list, a new resource late.
DEFAULT_COMMIT_GRACE_PERIOD = 60.0

#: How far a server's ``created_at`` may lie before our clock and still count as "since we started", when
#: the server's own clock is unknown (no ``Date`` seen, or a record written before we kept it).
CLOCK_SKEW_SECONDS = 120.0
#: Longest pause between two lookups of a POST of unknown outcome.
MAX_LOOKUP_PAUSE = 15.0
#: A server's ``Retry-After`` is obeyed within these bounds: at least 1 s (``0`` or a past date, e.g.
#: with clock skew, must not spend a whole error budget in milliseconds), at most 5 minutes (a day-long
#: value must not park a wait; the error budget decides when to give up).
RETRY_AFTER_FLOOR_SECONDS = 1.0
RETRY_AFTER_CAP_SECONDS = 300.0
#: Jitter of every polling interval: an interval is scaled by a uniform factor in [1 - f, 1 + f] (kept
#: within the schedule's bounds). Small on purpose: the first poll's spread (below) is what keeps waits
#: deferred together from polling together; this only keeps them from drifting back into step (after a
#: shared pause, or status changes seen at once), for at most a few per cent more polls.
DEFAULT_POLL_JITTER = 0.1
#: Longest window requests are spread over (``polling.Jitter.spread``): a wait's first poll in the triggerer
#: comes after U(0, min(its first interval, this)), so 1,000 waits deferred in the same second spread over
#: one interval and no first poll is more than a minute late (the sensor poked on the worker just before
#: deferring); the requests a shared pause (429) held back go out over U(0, min(the pause, this)) after it.
MAX_SPREAD_SECONDS = 60.0
#: Most pages ``GET /videos`` is followed for when the server does not say how many there are.
MAX_LIST_PAGES = 10_000

#: Progress points between two progress log lines: a line per meaningful change, not per poll.
PROGRESS_LOG_STEP = 5.0
#: Seconds between two listings by default: completions are noticed within a minute for one list per minute.
DEFAULT_WATCH_POLL_INTERVAL = 60.0
#: Shortest ``poll_interval`` accepted: every interval lists every page of the organisation's videos.
MIN_WATCH_POLL_INTERVAL = 5.0
#: Failed attempts to read the stored cursor before the watcher goes on without it (each one poll apart).
CURSOR_LOAD_ATTEMPTS = 3

# -- request fields ----------------------------------------------------------------------------------

#: Largest accepted id (the API's ids are integers; a signed 64-bit column is the widest plausible).
MAX_ID = 2**63 - 1
#: Largest accepted offset or padding, in seconds (a day; match videos are hours long).
MAX_SECONDS_FIELD = 86_400
#: Largest accepted ``fps`` (the docs' videos are 25 fps; nothing films football faster than 240).
MAX_FPS = 240

# -- the video requirements and their pre-flight checks (preflight.py) -------------------------------

#: The API's Videos page, "Video Requirements": MP4 only, 1080p or lower, 25 fps, at least 10 minutes.
VIDEO_REQUIRED_FPS = 25
VIDEO_MAX_WIDTH = 1920
VIDEO_MAX_HEIGHT = 1080
VIDEO_MIN_DURATION_SECONDS = 600
#: The same requirements in words, for messages (a video that ended in ``error``).
VIDEO_REQUIREMENTS = (
    f"a public URL, MP4, {VIDEO_MAX_HEIGHT}p or lower, {VIDEO_REQUIRED_FPS} fps, "
    f"at least {VIDEO_MIN_DURATION_SECONDS // 60} minutes"
)
#: Frame rates within this of 25 count as 25: a muxer's rounded timestamps give 24.998 on a 25 fps file.
VIDEO_FPS_TOLERANCE = 0.05
#: Largest video pre-flight accepts, in bytes. Not an API limit (the Videos page documents none): a 90-minute
#: 1080p25 match is 3-15 GB; 32 GiB catches a URL pointing at the wrong object (a day of CCTV, a disk image).
PREFLIGHT_MAX_VIDEO_BYTES = 32 * 1024**3
#: Seconds a presigned URL must still be valid when pre-flight runs. The Videos page does not say how soon
#: the API starts its download after ``POST /videos``; 15 minutes covers a queue and the start of a long download.
PREFLIGHT_EXPIRY_MARGIN_SECONDS = 900
#: Bytes per range request and cache block of the media probe: MP4 boxes are read in a handful of these.
PREFLIGHT_BLOCK_BYTES = 64 * 1024
#: Most bytes one media probe reads; a 90-minute match's index (``moov``) is a few MB. A file whose header
#: is not found within this is reported as not probed (the check is skipped), never downloaded whole.
PREFLIGHT_MAX_READ_BYTES = 32 * 1024 * 1024
#: Seconds to connect and to wait for each response of a pre-flight request.
PREFLIGHT_CONNECT_TIMEOUT = 10.0
PREFLIGHT_READ_TIMEOUT = 30.0
#: Whether the create-video operator runs its pre-flight checks when neither the task (``preflight``) nor
#: its connection (extra ``preflight``) says.
DEFAULT_PREFLIGHT = True

# -- videos in object storage (sources.py) ------------------------------------------------------------

#: Seconds a presigned object-storage URL stays valid (the create operator's ``presign_expires_in``). The Videos
#: page does not say when the API downloads after ``POST /videos`` (a queue, then hours of download for a long
#: match at a slow rate): a day covers that with room, far past the pre-flight margin above, and still ends
#: long before the week that S3 SigV4 and GCS V4 signatures allow at most.
DEFAULT_PRESIGN_EXPIRES_IN = 24 * 3600
#: The longest presigned URL: S3 SigV4 and GCS V4 signatures (and an Azure user-delegation key) last at most 7 days.
MAX_PRESIGN_EXPIRES_IN = 7 * 24 * 3600
#: An Azure SAS starts this many seconds before now: a storage server whose clock runs ahead still accepts it.
SAS_START_SKEW_SECONDS = 300
