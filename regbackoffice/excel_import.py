# Queued by dotted path before the job registry and the imports package; remove after one release.
from .imports.job import run_import_job as run_import_job
