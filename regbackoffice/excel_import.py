# Queued before the imports package; remove after one release.
from .imports.job import run_import_job as run_import_job
