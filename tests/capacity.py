"""What each DynamoDB request costs, per table or index and partition key (issue 15).

`CapacityRecorder` hooks the botocore clients PynamoDB uses (botocore's own event hooks: no code
of the product is patched) and charges every data request what DynamoDB would, from the sizes of
the items it reads and writes. It reads those items back from the same backend with a client of
its own, which it does not record. moto answers ConsumedCapacity with one constant per operation
(0.5 for an UpdateItem of any size), so moto's figure is not used.

DynamoDB's rules, as the Amazon DynamoDB Developer Guide states them, implemented here:

- Item size ("DynamoDB item sizes and formats",
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):
  the sum of each attribute's name length and value size. A string is its UTF-8 bytes; a number
  1 byte per two significant digits, plus 1; a binary its raw bytes; null and boolean 1 byte; a
  list or map 3 bytes plus its elements, each 1 byte more (a map's element with its name). Sets
  are taken as the sum of their elements (that page does not give them). 1 KB is 1,024 bytes
  ("Constraints").
- Reads ("DynamoDB read and write operations", read-operation-consumption,
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html):
  GetItem rounds the item up to 4 KB, one unit per 4 KB strongly consistent, half a unit
  eventually consistent (the default), two transactional; an item not found costs the minimum.
  BatchGetItem charges each item as a GetItem (1.5 KB and 6.5 KB cost as 4 KB + 8 KB). Query
  sums the items read and rounds the sum up to 4 KB; a filter is applied after the read, so the
  cost is the same with or without one (".../Query.FilterExpression.html"); an index Query reads
  its index entries. Scan as Query, over the table.
- Writes (same page, write-operation-consumption): PutItem, UpdateItem and DeleteItem round the
  larger of the item before and after the write up to 1 KB, one unit per KB; a write whose
  condition fails still costs (the item's size, at least one unit); BatchWriteItem charges each
  item as a PutItem or DeleteItem; transactional writes cost twice.
- Global secondary indexes ("Using Global Secondary Indexes", GSI.Writes,
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html): a table write that
  puts an item into an index (the item has the index's key attributes) writes the index entry
  (the index's keys, the table's keys, the projected attributes) under the index's partition
  key; moving an item from one index key to another costs two writes (a delete, a put), taking
  it out of the index one, changing only projected attributes one, changing nothing projected
  none. An index that cannot keep up throttles the table's writes.
- Each partition serves at most 3,000 read units and 1,000 write units a second
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html):
  however the table splits, all the items of one partition key value are read and written
  through one partition unless DynamoDB splits it by sort key, which this harness does not
  count on.
"""

import math
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import boto3
from botocore.client import BaseClient

from abacus_local import iam

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

type AttributeValue = Mapping[str, Any]  # DynamoDB's wire format: {"S": "text"}, {"N": "1.5"}, ...
type Item = Mapping[str, Any]  # attribute name: AttributeValue

KB = 1024
WRITE_UNIT_BYTES = KB
READ_UNIT_BYTES = 4 * KB
MAX_READ_UNITS_PER_KEY = 3000  # a second
MAX_WRITE_UNITS_PER_KEY = 1000
WHOLE_TABLE = "*"  # a Scan's partition key: it reads every partition
# Data requests whose cost is not modelled here: recording one is an error, never a silent zero.
UNMODELLED = {"ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"}


# Sizes ----------------------------------------------------------------------------------------


def number_size(text: str) -> int:
    """A number's size: 1 byte per two significant digits (leading and trailing zeros trimmed), plus 1."""
    mantissa = re.split("[eE]", text.strip())[0].lstrip("+-").replace(".", "")
    digits = mantissa.strip("0")
    return math.ceil(len(digits) / 2) + 1


_VALUE_SIZES: dict[str, Callable[[Any], int]] = {
    "S": lambda text: len(text.encode()),
    "N": number_size,
    "B": lambda raw: len(raw),
    "BOOL": lambda _: 1,
    "NULL": lambda _: 1,
    "SS": lambda texts: sum(len(text.encode()) for text in texts),
    "NS": lambda numbers: sum(number_size(number) for number in numbers),
    "BS": lambda raws: sum(len(raw) for raw in raws),
    "L": lambda values: 3 + sum(value_size(value) + 1 for value in values),
    "M": lambda item: 3 + sum(len(name.encode()) + value_size(value) + 1 for name, value in item.items()),
}


def value_size(value: AttributeValue) -> int:
    """The size in bytes of one attribute value in DynamoDB's wire format ({"S": "text"}, ...)."""
    ((kind, data),) = value.items()
    return _VALUE_SIZES[kind](data)


def item_size(item: Item | None) -> int:
    """An item's size in bytes: its attributes' name lengths and value sizes (0 for no item)."""
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


# Units ----------------------------------------------------------------------------------------


def write_units(size: int, transactional: bool = False) -> int:
    """Write units of writing `size` bytes: one per started KB (at least one), twice in a transaction."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES)) * (2 if transactional else 1)


def read_units(size: int, consistent: bool, transactional: bool = False) -> float:
    """Read units of reading `size` bytes at once: one per started 4 KB (at least one) strongly
    consistent, half that eventually consistent, twice that in a transaction."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return units * 2 if transactional else units if consistent else units / 2


def query_read_units(sizes: Iterable[int], consistent: bool) -> float:
    """A Query (or Scan) page's read units: the items read are summed, then rounded up to 4 KB."""
    return read_units(sum(sizes), consistent)


def batch_get_read_units(sizes: Iterable[int], consistent: bool) -> float:
    """A BatchGetItem's read units: each item rounded up to 4 KB on its own."""
    return sum(read_units(size, consistent) for size in sizes)


# Tables ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]  # partition key, then sort key if any
    projection: str  # ALL, KEYS_ONLY or INCLUDE
    projected: frozenset[str]  # INCLUDE's non-key attributes


@dataclass(frozen=True)
class TableSchema:
    name: str
    keys: tuple[str, ...]
    indexes: tuple[Index, ...]

    @classmethod
    def described(cls, table: Mapping[str, Any]) -> "TableSchema":
        """The schema of DescribeTable's `Table`."""
        if table.get("LocalSecondaryIndexes"):
            raise ValueError(f"{table['TableName']}: local secondary indexes are not modelled")
        indexes = tuple(
            Index(
                index["IndexName"],
                _key_names(index["KeySchema"]),
                index["Projection"]["ProjectionType"],
                frozenset(index["Projection"].get("NonKeyAttributes", [])),
            )
            for index in table.get("GlobalSecondaryIndexes", [])
        )
        return cls(table["TableName"], _key_names(table["KeySchema"]), indexes)

    def key_of(self, item: Item) -> Item:
        return {name: item[name] for name in self.keys}

    def key_id(self, item: Item) -> tuple[str, ...]:
        """A hashable identity of the item's primary key."""
        return tuple(repr(item[name]) for name in self.keys)

    def index(self, name: str) -> Index:
        return next(index for index in self.indexes if index.name == name)

    def entry(self, index: Index, item: Item | None) -> Item | None:
        """The item's entry in `index`, or None when it has not all of the index's key attributes."""
        if item is None or any(name not in item for name in index.keys):
            return None
        if index.projection == "ALL":
            return dict(item)
        kept = {*self.keys, *index.keys, *(index.projected if index.projection == "INCLUDE" else ())}
        return {name: value for name, value in item.items() if name in kept}


def _key_names(key_schema: list[dict[str, str]]) -> tuple[str, ...]:
    ordered = sorted(key_schema, key=lambda key: key["KeyType"] != "HASH")
    return tuple(key["AttributeName"] for key in ordered)


def key_text(value: AttributeValue) -> str:
    """A key attribute's value as text (strings and numbers as they are, binary in hex)."""
    ((kind, data),) = value.items()
    return data.hex() if kind == "B" else str(data)


# What was recorded ----------------------------------------------------------------------------


class Charge(NamedTuple):
    """Units one request consumed on one partition key of a table or of one of its indexes."""

    table: str
    index_name: str | None
    partition_key: str
    read_units: float = 0.0
    write_units: float = 0.0

    @property
    def target(self) -> str:
        return self.table if self.index_name is None else f"{self.table}/index/{self.index_name}"


class Request(NamedTuple):
    operation: str
    charges: tuple[Charge, ...]


class KeyRate(NamedTuple):
    """A partition key's units a second at a target rate of traffic."""

    target: str  # table, or table/index/name
    partition_key: str
    read_units: float
    write_units: float

    @property
    def over_limit(self) -> bool:
        return self.read_units > MAX_READ_UNITS_PER_KEY or self.write_units > MAX_WRITE_UNITS_PER_KEY

    @property
    def load(self) -> float:
        """The larger of its read and write units as a fraction of the partition's limit."""
        return max(self.read_units / MAX_READ_UNITS_PER_KEY, self.write_units / MAX_WRITE_UNITS_PER_KEY)


def key_rates(requests: Iterable[Request], traffic: int, rate: float) -> list[KeyRate]:
    """Units a second on each partition key when `rate` units of traffic (events, assignments) a
    second arrive spread as the `traffic` recorded ones were; the most loaded first."""
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for request in requests:
        for charge in request.charges:
            total = totals[charge.target, charge.partition_key]
            total[0] += charge.read_units
            total[1] += charge.write_units
    scale = rate / traffic
    rates = [KeyRate(target, key, reads * scale, writes * scale) for (target, key), (reads, writes) in totals.items()]
    return sorted(rates, key=lambda rate: (-rate.load, rate.target, rate.partition_key))


def over_limits(rates: Iterable[KeyRate]) -> list[KeyRate]:
    return [rate for rate in rates if rate.over_limit]


# The recorder ---------------------------------------------------------------------------------

type Finish = Callable[[dict[str, Any]], list[Charge]]


class _Write(NamedTuple):
    table: str
    key: Item
    put: Item | None  # the item after the write when known (a Put's; an update's ALL_NEW answer)
    delete: bool
    before: Item | None
    condition_only: bool = False  # a transaction's ConditionCheck


class CapacityRecorder:
    """Records the capacity every DynamoDB data request of the hooked clients consumes.

    `with recorder.recording():` hooks the clients of every PynamoDB model (`attach` hooks any
    botocore DynamoDB client); `requests` holds one `Request` per API call, in order."""

    _CONTEXT_KEY = "capacity_recorder.finish"

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._reader: DynamoDBClient | None = None
        self._schemas: dict[str, TableSchema] = {}
        self._attached: list[BaseClient] = []
        self._lock = threading.Lock()
        self._planners: dict[str, Callable[[dict[str, Any]], Finish]] = {
            "GetItem": self._get_item,
            "BatchGetItem": self._batch_get_item,
            "TransactGetItems": self._transact_get_items,
            "Query": self._query,
            "Scan": self._scan,
            "PutItem": self._put_item,
            "UpdateItem": self._update_item,
            "DeleteItem": self._delete_item,
            "BatchWriteItem": self._batch_write_item,
            "TransactWriteItems": self._transact_write_items,
        }

    # Hooks

    def attach(self, client: BaseClient) -> None:
        if self._reader is None:
            # A client of its own on the same endpoint, unhooked: its reads are not recorded.
            self._reader = boto3.session.Session().client(
                "dynamodb", region_name=client.meta.region_name, endpoint_url=client.meta.endpoint_url
            )
        events = client.meta.events
        events.register("provide-client-params.dynamodb", self._before, unique_id=f"{id(self)}-before")
        events.register("after-call.dynamodb", self._after, unique_id=f"{id(self)}-after")
        self._attached.append(client)

    def detach(self) -> None:
        for client in self._attached:
            client.meta.events.unregister("provide-client-params.dynamodb", unique_id=f"{id(self)}-before")
            client.meta.events.unregister("after-call.dynamodb", unique_id=f"{id(self)}-after")
        self._attached.clear()

    @contextmanager
    def recording(self, clients: Iterable[BaseClient] | None = None) -> Iterator["CapacityRecorder"]:
        """Records the requests of `clients` (default: every PynamoDB model's) until the block ends."""
        for client in pynamodb_clients() if clients is None else clients:
            self.attach(client)
        try:
            yield self
        finally:
            self.detach()

    def _before(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        planner = self._planners.get(model.name)
        if planner is not None:
            context[self._CONTEXT_KEY] = planner(params)
        elif model.name in UNMODELLED:
            raise ValueError(f"the capacity of {model.name} is not modelled")

    def _after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        finish: Finish | None = context.pop(self._CONTEXT_KEY, None)
        if finish is not None:
            request = Request(model.name, tuple(finish(parsed)))
            with self._lock:
                self.requests.append(request)

    # Reading what a request read or wrote, with the unhooked client: the meter's reads, made
    # while a handler's request is answered, are the test's, not the function's (no IAM check).

    def schema(self, table: str) -> TableSchema:
        if table not in self._schemas:
            assert self._reader is not None
            with iam.acting_as(None):
                described = self._reader.describe_table(TableName=table)["Table"]
            self._schemas[table] = TableSchema.described(described)
        return self._schemas[table]

    def _items(self, table: str, keys: list[Item]) -> dict[tuple[str, ...], Item]:
        """The stored items of these keys (strongly consistent), by key id."""
        assert self._reader is not None
        schema, found = self.schema(table), dict[tuple[str, ...], Item]()
        unique = list({schema.key_id(key): schema.key_of(key) for key in keys}.values())
        for start in range(0, len(unique), 100):
            pending: dict[str, Any] = {table: {"Keys": unique[start : start + 100], "ConsistentRead": True}}
            while pending:
                with iam.acting_as(None):
                    answer = self._reader.batch_get_item(RequestItems=pending)
                found |= {schema.key_id(item): item for item in answer["Responses"].get(table, [])}
                pending = answer.get("UnprocessedKeys") or {}
        return found

    def _item(self, table: str, key: Item) -> Item | None:
        return self._items(table, [key]).get(self.schema(table).key_id(key))

    def _charge(self, table: str, key: Item, reads: float = 0.0, writes: float = 0.0) -> Charge:
        return Charge(table, None, key_text(key[self.schema(table).keys[0]]), reads, writes)

    # Reads

    def _get_item(self, params: dict[str, Any]) -> Finish:
        table, key, consistent = params["TableName"], params["Key"], params.get("ConsistentRead", False)

        def finish(parsed: dict[str, Any]) -> list[Charge]:
            if "Error" in parsed:
                return []
            return [self._charge(table, key, reads=read_units(item_size(self._item(table, key)), consistent))]

        return finish

    def _batch_get_item(self, params: dict[str, Any]) -> Finish:
        def finish(parsed: dict[str, Any]) -> list[Charge]:
            unprocessed = parsed.get("UnprocessedKeys") or {}
            charges = []
            for table, request in ({} if "Error" in parsed else params["RequestItems"]).items():
                skipped = unprocessed.get(table, {}).get("Keys", [])
                keys = [key for key in request["Keys"] if key not in skipped]
                consistent, found = request.get("ConsistentRead", False), self._items(table, keys)
                for key in keys:
                    size = item_size(found.get(self.schema(table).key_id(key)))
                    charges.append(self._charge(table, key, reads=read_units(size, consistent)))
            return charges

        return finish

    def _transact_get_items(self, params: dict[str, Any]) -> Finish:
        def finish(parsed: dict[str, Any]) -> list[Charge]:
            charges = []
            for get in [] if "Error" in parsed else [entry["Get"] for entry in params["TransactItems"]]:
                size = item_size(self._item(get["TableName"], get["Key"]))
                charges.append(self._charge(get["TableName"], get["Key"], reads=read_units(size, True, True)))
            return charges

        return finish

    def _query(self, params: dict[str, Any]) -> Finish:
        return self._paged_read(params, scan=False)

    def _scan(self, params: dict[str, Any]) -> Finish:
        return self._paged_read(params, scan=True)

    def _paged_read(self, params: dict[str, Any], scan: bool) -> Finish:
        """A Query or Scan page: the same page read again without filter or projection, so that
        every item it read counts whole (an index's entries as the index holds them)."""

        def finish(parsed: dict[str, Any]) -> list[Charge]:
            if "Error" in parsed:
                return []
            assert self._reader is not None
            plain = _unfiltered(params, scan)
            with iam.acting_as(None):
                read = self._reader.scan(**plain) if scan else self._reader.query(**plain)
            units = query_read_units((item_size(item) for item in read["Items"]), params.get("ConsistentRead", False))
            key = WHOLE_TABLE if scan else self._queried_key(params)
            return [Charge(params["TableName"], params.get("IndexName"), key, read_units=units)]

        return finish

    def _queried_key(self, params: dict[str, Any]) -> str:
        """The partition key value a Query's key condition names."""
        schema = self.schema(params["TableName"])
        index = params.get("IndexName")
        partition = schema.index(index).keys[0] if index else schema.keys[0]
        names = params.get("ExpressionAttributeNames", {})
        for name, value in re.findall(r"([#\w]+)\s*=\s*(:\w+)", params["KeyConditionExpression"]):
            if names.get(name, name) == partition:
                return key_text(params["ExpressionAttributeValues"][value])
        raise ValueError(f"no partition key in {params['KeyConditionExpression']!r}")

    # Writes

    def _put_item(self, params: dict[str, Any]) -> Finish:
        key = self.schema(params["TableName"]).key_of(params["Item"])
        return self._single_write(self._write(params["TableName"], key, put=params["Item"]))

    def _update_item(self, params: dict[str, Any]) -> Finish:
        # An update's item after it is read back, unless the answer holds it whole (ALL_NEW).
        returned = params.get("ReturnValues") == "ALL_NEW"
        return self._single_write(self._write(params["TableName"], params["Key"]), returned)

    def _delete_item(self, params: dict[str, Any]) -> Finish:
        return self._single_write(self._write(params["TableName"], params["Key"], delete=True))

    def _write(self, table: str, key: Item, put: Item | None = None, delete: bool = False) -> _Write:
        return _Write(table, key, put, delete, self._item(table, key))

    def _single_write(self, write: _Write, returned: bool = False) -> Finish:
        def finish(parsed: dict[str, Any]) -> list[Charge]:
            code = parsed.get("Error", {}).get("Code")
            if code == "ConditionalCheckFailedException":
                return [self._charge(write.table, write.key, writes=write_units(item_size(write.before)))]
            if code:
                return []
            return self._write_charges(write._replace(put=parsed["Attributes"]) if returned else write)

        return finish

    def _batch_write_item(self, params: dict[str, Any]) -> Finish:
        writes = []
        for table, requests in params["RequestItems"].items():
            for request in requests:
                if "PutRequest" in request:
                    item = request["PutRequest"]["Item"]
                    writes.append(_Write(table, self.schema(table).key_of(item), item, False, None))
                else:
                    writes.append(_Write(table, request["DeleteRequest"]["Key"], None, True, None))
        stored = {
            table: self._items(table, [w.key for w in writes if w.table == table]) for table in params["RequestItems"]
        }
        writes = [w._replace(before=stored[w.table].get(self.schema(w.table).key_id(w.key))) for w in writes]

        def finish(parsed: dict[str, Any]) -> list[Charge]:
            unprocessed = {
                (table, self.schema(table).key_id(_request_key(self.schema(table), request)))
                for table, requests in (parsed.get("UnprocessedItems") or {}).items()
                for request in requests
            }
            done = [w for w in writes if (w.table, self.schema(w.table).key_id(w.key)) not in unprocessed]
            return [] if "Error" in parsed else [charge for write in done for charge in self._write_charges(write)]

        return finish

    def _transact_write_items(self, params: dict[str, Any]) -> Finish:
        writes = []
        for entry in params["TransactItems"]:
            ((kind, action),) = entry.items()
            table = action["TableName"]
            key = self.schema(table).key_of(action["Item"]) if kind == "Put" else action["Key"]
            write = self._write(table, key, put=action.get("Item"), delete=kind == "Delete")
            writes.append(write._replace(condition_only=kind == "ConditionCheck"))

        def finish(parsed: dict[str, Any]) -> list[Charge]:
            if "Error" in parsed:
                return []  # a cancelled transaction: not modelled (the product sends none)
            return [charge for write in writes for charge in self._write_charges(write, transactional=True)]

        return finish

    def _write_charges(self, write: _Write, transactional: bool = False) -> list[Charge]:
        """The table's units of a write done, and those of every index whose entry it changed."""
        if write.condition_only:
            units = write_units(item_size(write.before), transactional)
            return [self._charge(write.table, write.key, writes=units)]
        after = None if write.delete else write.put if write.put is not None else self._item(write.table, write.key)
        size = max(item_size(write.before), item_size(after))
        charges = [self._charge(write.table, write.key, writes=write_units(size, transactional))]
        schema = self.schema(write.table)
        for index in schema.indexes:
            charges += index_writes(schema, index, write.before, after, transactional)
        return charges


def index_writes(
    schema: TableSchema, index: Index, before: Item | None, after: Item | None, transactional: bool = False
) -> list[Charge]:
    """What a table write costs `index` (GSI.Writes): a put of a new entry, a delete of one that
    left, both when the entry moved to another index key, one write when only projected
    attributes changed, none when the entry is the same."""
    old, new = schema.entry(index, before), schema.entry(index, after)
    if old == new:
        return []
    moved = old is not None and new is not None and any(old[name] != new[name] for name in index.keys)
    charges = []
    if old is not None and (new is None or moved):
        charges.append(_index_charge(schema, index, old, item_size(old), transactional))
    if new is not None:
        size = item_size(new) if old is None or moved else max(item_size(old), item_size(new))
        charges.append(_index_charge(schema, index, new, size, transactional))
    return charges


def _index_charge(schema: TableSchema, index: Index, entry: Item, size: int, transactional: bool) -> Charge:
    return Charge(schema.name, index.name, key_text(entry[index.keys[0]]), 0.0, write_units(size, transactional))


def _request_key(schema: TableSchema, request: dict[str, Any]) -> Item:
    if "PutRequest" in request:
        return schema.key_of(request["PutRequest"]["Item"])
    return request["DeleteRequest"]["Key"]


def _unfiltered(params: dict[str, Any], scan: bool) -> dict[str, Any]:
    """A Query's or Scan's parameters without filter or projection, and without the expression
    names and values only those used (DynamoDB refuses unused ones)."""
    dropped = {"FilterExpression", "ProjectionExpression", "AttributesToGet", "Select", "ReturnConsumedCapacity"}
    plain = {name: value for name, value in params.items() if name not in dropped}
    used = set() if scan else set(re.findall(r"[#:]\w+", params["KeyConditionExpression"]))
    for field in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
        kept = {name: value for name, value in plain.pop(field, {}).items() if name in used}
        if kept:
            plain[field] = kept
    return plain


def pynamodb_clients() -> list[BaseClient]:
    """The botocore client of every PynamoDB model with a table (its connection made now if none was)."""
    from pynamodb.models import Model

    import abacus.storage.assignments
    import abacus.storage.events
    import abacus.storage.experiments
    import abacus.storage.project_items
    import abacus.storage.rate_limits
    import abacus.storage.results  # noqa: F401 - every model of the product, defined

    clients: dict[int, BaseClient] = {}
    models: list[type[Model]] = [Model]
    while models:
        model = models.pop()
        models.extend(model.__subclasses__())
        if getattr(getattr(model, "Meta", None), "table_name", None):
            client = model._get_connection().connection.client
            clients[id(client)] = client
    return list(clients.values())
