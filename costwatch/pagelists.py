"""Bounded lists on pages: a page shows at most a fixed number of rows and says "showing N of
M"; "download all" is a CSV streamed row by row, never built whole in memory
(docs/security.md#bounded-work-per-request).
"""

import csv
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils.http import urlencode

PAGE_ROWS = 200  # rows of one list on a page; the CSV has them all


@dataclass
class PageList:
    rows: list
    total: int
    csv_url: str  # the page's own URL and query string, plus format=csv (and which list)

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


def page_list(request, rows, *, limit: int = PAGE_ROWS, name: str = "", path: str = "") -> PageList:
    """The first `limit` of `rows` (a queryset is counted and sliced in SQL) and how many there are.
    `name` picks this list's CSV on a page that shows several; `path` is the page's URL when the
    request is a form's POST to another one."""
    if isinstance(rows, QuerySet):
        total, shown = rows.count(), list(rows[:limit])
    else:
        total, shown = len(rows), list(rows[:limit])
    query = {**request.GET.dict(), "format": "csv", **({"list": name} if name else {})}
    return PageList(rows=shown, total=total, csv_url=f"{path or request.path}?{urlencode(query)}")


def wants_csv(request, name: str = "") -> bool:
    return request.GET.get("format") == "csv" and request.GET.get("list", "") == name


def csv_value(value):
    if isinstance(value, Decimal):
        return f"{value:.6f}"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return "" if value is None else value


class _Echo:
    def write(self, value):
        return value


def csv_response(*, filename: str, columns: list[str], rows, values=None) -> StreamingHttpResponse:
    """All `rows` as CSV, written one line at a time while the answer is sent. A queryset is read
    in chunks (`.iterator()`); `values(row)` gives a row's cells, by default `row[column]`."""
    if isinstance(rows, QuerySet):
        rows = rows.iterator(chunk_size=1000)
    cells = values or (lambda row: [row.get(column) for column in columns])
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(columns)
        for row in rows:
            yield writer.writerow([csv_value(value) for value in cells(row)])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
