"""Children: subjects under the age the policy or the law sets, found in the datasets.

`children_report` (lawful.children.report) finds them through the annotated birth-date
columns; `Children` (lawful.children.service) audits the report and raises erasure
requests; `lawful children report` is its command (lawful.children.cli). See
docs/children.md.
"""

from lawful.children.report import Child, ChildrenReport, TableChildren, children_report, cutoff
from lawful.children.service import Children, ChildrenError, RaisedErasure

__all__ = [
    "Child",
    "Children",
    "ChildrenError",
    "ChildrenReport",
    "RaisedErasure",
    "TableChildren",
    "children_report",
    "cutoff",
]
