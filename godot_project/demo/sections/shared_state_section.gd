class_name DemoSharedStateSection
extends DemoSection
## Demo section: reader and writer threads share one SharedResource: a transfer between two keys
## written with batch_update is never seen half done; the same transfer as two write_value calls
## is; update_value loses no increment.

## "left" + "right" always sum to this when transfers are atomic.
const TOTAL := 1000

## Reader threads (headless, and the spin box's start value).
@export_range(1, 8) var readers := 2
## Writer threads.
@export_range(1, 8) var writers := 2
## Reads or writes each thread makes in the headless run.
@export_range(100, 100_000, 100) var headless_ops := 4000
## How often the live statistics refresh.
@export_range(50, 2000, 50, "suffix:ms") var refresh_msec := 250

var _store: SharedResource
var _threads: Array[Thread] = []
var _running := AtomicCounter.new()
var _reads := AtomicCounter.new()
var _torn := AtomicCounter.new()
var _last_reads := 0
var _last_usec := 0

@onready var _batch_mode: CheckButton = %BatchMode
@onready var _readers: SpinBox = %Readers
@onready var _start: Button = %Start
@onready var _stats: Label = %Stats


## Starts [param reader_count] reader and [param writer_count] writer threads on [param store].
## Writers move amounts between "left" and "right" ([param batch]: one batch_update; otherwise
## two write_value calls) and add 1 to "gold" with update_value, [param ops] times
## ([code]-1[/code]: while [param running] is 1). Readers take snapshots and count those whose sum
## is not TOTAL in [param torn], and every read in [param reads].
static func start(store: SharedResource, reader_count: int, writer_count: int, ops: int, batch: bool,
		running: AtomicCounter, reads: AtomicCounter, torn: AtomicCounter) -> Array[Thread]:
	store.batch_update({"left": TOTAL, "right": 0, "gold": 0})
	var threads: Array[Thread] = []
	for w in writer_count:
		var thread := Thread.new()
		thread.start(func() -> void:
			var rng := RandomNumberGenerator.new()
			var n := 0
			while n != ops and running.get_count() == 1:
				var left := rng.randi_range(0, TOTAL)
				if batch:
					store.batch_update({"left": left, "right": TOTAL - left})
				else:
					store.write_value("left", left)
					store.write_value("right", TOTAL - left)
				store.update_value("gold", func(gold: int) -> int: return gold + 1)
				n += 1)
		threads.append(thread)
	for r in reader_count:
		var thread := Thread.new()
		thread.start(func() -> void:
			var n := 0
			while n != ops and running.get_count() == 1:
				var snapshot := store.get_all_data()
				if snapshot["left"] + snapshot["right"] != TOTAL:
					torn.increment()
				store.read_value("gold")
				reads.increment()
				n += 1)
		threads.append(thread)
	return threads


## Headless: both ways, with the exported reader and writer counts. Returns {headers, rows, ok}.
func run_headless(_host: Node) -> Dictionary:
	var rows := []
	var ok := true
	for batch: bool in [true, false]:
		var store := SharedResource.new()
		var running := AtomicCounter.new()
		running.set_count(1)
		var reads := AtomicCounter.new()
		var torn := AtomicCounter.new()
		var started := Time.get_ticks_usec()
		for thread in start(store, readers, writers, headless_ops, batch, running, reads, torn):
			thread.wait_to_finish()
		var msec := (Time.get_ticks_usec() - started) / 1000.0
		var gold: int = store.read_value("gold")
		var gold_ok := gold == writers * headless_ops
		var note: String
		if batch:
			ok = ok and torn.get_count() == 0 and gold_ok
			note = "no half-done transfer seen" if torn.get_count() == 0 else "WRONG: torn snapshots"
		else:
			ok = ok and gold_ok
			note = ("half-done transfers seen" if torn.get_count() > 0
					else "none seen this time: it is luck, run again")
		if not gold_ok:
			note = "WRONG: update_value lost increments"
		var stats := store.get_access_statistics()
		rows.append(["batch_update" if batch else "two write_value", reads.get_count(),
				torn.get_count(), "%d / %d" % [gold, writers * headless_ops], stats.version, "%.0f" % msec, note])
	return {"headers": ["writers use", "snapshots read", "torn snapshots", "gold (update_value)",
			"version", "ms", "check"], "rows": rows, "ok": ok}


## Interactive: start and stop readers and writers; live reads per second, torn snapshots and
## the store's own statistics.
func _ready() -> void:
	super()
	_readers.value = readers
	_stats.text = "Press Start: %d writer threads and the reader threads share one SharedResource." % writers


## Closing the demo (or the tab's scene) stops and joins the threads.
func _exit_tree() -> void:
	_stop_live()


func _on_start_pressed() -> void:
	if _threads.is_empty():
		_start_live()
	else:
		_stop_live()


func _start_live() -> void:
	_store = SharedResource.new()
	_running.set_count(1)
	_reads.reset()
	_torn.reset()
	_last_reads = 0
	_last_usec = Time.get_ticks_usec()
	_threads = start(_store, int(_readers.value), writers, -1, _batch_mode.button_pressed, _running, _reads, _torn)
	_batch_mode.disabled = true
	_readers.editable = false
	_start.text = "Stop"


func _stop_live() -> void:
	if _threads.is_empty():
		return
	_running.set_count(0)
	for thread in _threads:
		thread.wait_to_finish()
	_threads.clear()
	_batch_mode.disabled = false
	_readers.editable = true
	_start.text = "Start"
	# Batch updates are never seen half done; separate writes may be, which is the lesson.
	run_finished.emit(not _batch_mode.button_pressed or _torn.get_count() == 0)


func _process(_delta: float) -> void:
	if _threads.is_empty():
		return
	var now := Time.get_ticks_usec()
	if now - _last_usec < refresh_msec * 1000:
		return
	var reads := _reads.get_count()
	var per_second := (reads - _last_reads) * 1_000_000.0 / (now - _last_usec)
	_last_reads = reads
	_last_usec = now
	var stats := _store.get_access_statistics()
	var lines := PackedStringArray([
		"snapshots read: %d (%.0f / s)   torn snapshots: %d" % [reads, per_second, _torn.get_count()],
		"version: %d   store reads: %d   writes: %d   misses: %d" % [stats.version, stats.total_reads,
				stats.total_writes, stats.misses]])
	for key: String in ["left", "right", "gold"]:
		var k: Dictionary = stats["keys"].get(key, {"reads": 0, "writes": 0})
		lines.append("  %s = %s   (reads %d, writes %d)" % [key, _store.read_value(key), k.reads, k.writes])
	_stats.text = "\n".join(lines)
