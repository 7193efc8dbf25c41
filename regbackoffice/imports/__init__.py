"""Importing the cylinder list (导入气瓶信息) into a draft application.

One module per job, in the order a file goes through them:

- ``safety``: the file is checked before any parser sees it (size, zip entry count,
  expansion ratio, DOCTYPE/ENTITY declarations in any XML part);
- ``reader``: the sheet is read with calamine (values come typed) and its header checked;
  its rows are then given one at a time (``ParsedRows``), never held all at once;
- ``legacy``: what calamine does not say of .xls and .ods sheets (hidden rows, error cells);
- ``cells``: one cell's value as text, month, date or number;
- ``rules``: every rule of DESIGN sections 3 and 5, one function per rule, run in order;
- ``persistence``: the rows validated, looked up and written in chunks of 2,000 (one
  transaction); archive and claim look-ups, and the insert that claims each cylinder and
  its tag (``INSERT … ON CONFLICT DO NOTHING`` on the unique ``live_identity_key`` and
  ``live_tag_key``: of two concurrent imports of one cylinder, or of one new QR URL/RFID
  code, exactly one keeps it);
- ``refused``: the refused rows, stored one by one as each chunk is written, read back in
  row order (the result page's first 500, 下载错误数据 a page at a time);
- ``job``: small files are imported in the request, large ones by the rq job with progress
  in Redis;
- ``template``: the Excel template and the error file (下载错误数据) in its layout.
"""

from __future__ import annotations

from ..domain_errors import DomainError


class ImportRejected(DomainError):
    """The whole file is refused; the message (Chinese) says why. Nothing is stored."""
