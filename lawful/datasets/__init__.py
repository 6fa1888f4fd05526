"""Datasets: annotations of a company's own databases, and the subject's rows in them.

An annotation file (`lawful.datasets.model`, reference in docs/datasets.md) says where a
database's personal data is and how its rows reach a subject. `Datasets` loads the
files, checks them against the policy and the live schema, and finds, returns, corrects
and erases a subject's rows in SQLite, PostgreSQL and MySQL/MariaDB, set-based.
"""

from lawful.datasets.access import (
    Correctable,
    DatasetAccess,
    DatasetRectified,
    RectifyError,
    TableAccess,
)
from lawful.datasets.connect import ConnectError
from lawful.datasets.erase import DatasetErasure, ErasureFailed, TableOutcome
from lawful.datasets.graph import Graph, build_graph
from lawful.datasets.load import DatasetError, LoadedDataset, load_dataset, load_dataset_text
from lawful.datasets.masks import MaskKeyMissing
from lawful.datasets.model import Dataset
from lawful.datasets.service import Datasets, parse_identities
from lawful.datasets.traverse import Found, FoundTable, traverse

__all__ = [
    "ConnectError",
    "Correctable",
    "Dataset",
    "DatasetAccess",
    "DatasetErasure",
    "DatasetError",
    "DatasetRectified",
    "Datasets",
    "ErasureFailed",
    "Found",
    "FoundTable",
    "Graph",
    "LoadedDataset",
    "MaskKeyMissing",
    "RectifyError",
    "TableAccess",
    "TableOutcome",
    "build_graph",
    "load_dataset",
    "load_dataset_text",
    "parse_identities",
    "traverse",
]
