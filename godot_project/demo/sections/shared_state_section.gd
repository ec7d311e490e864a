extends RefCounted
## Demo section: reader and writer threads share one SharedResource: a transfer between two keys
## written with batch_update is never seen half done; the same transfer as two write_value calls
## is; update_value loses no increment.

const TITLE := "Shared state"
const LESSON := "Readers share a SharedResource at once. A change to several keys made with batch_update is seen whole or not at all; two separate writes can be seen half done. update_value is an atomic read-modify-write: no lost updates."
const FrameGraph := preload("res://demo/widgets/frame_graph.gd")

## "left" + "right" always sum to this when transfers are atomic.
const TOTAL := 1000
const HEADLESS_OPS := 4000

var _store: SharedResource
var _threads: Array[Thread] = []
var _running := AtomicCounter.new()
var _reads := AtomicCounter.new()
var _torn := AtomicCounter.new()
var _batch_mode: CheckButton
var _readers: SpinBox
var _start: Button
var _stats: Label
var _last_reads := 0
var _last_usec := 0


## Starts [param readers] reader and [param writers] writer threads on [param store]. Writers
## move amounts between "left" and "right" ([param batch]: one batch_update; otherwise two
## write_value calls) and add 1 to "gold" with update_value, [param ops] times ([code]-1[/code]:
## while [param running] is 1). Readers take snapshots and count those whose sum is not TOTAL in
## [param torn], and every read in [param reads].
static func start(store: SharedResource, readers: int, writers: int, ops: int, batch: bool,
		running: AtomicCounter, reads: AtomicCounter, torn: AtomicCounter) -> Array[Thread]:
	store.batch_update({"left": TOTAL, "right": 0, "gold": 0})
	var threads: Array[Thread] = []
	for w in writers:
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
	for r in readers:
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


## Headless: both ways, 2 readers and 2 writers. Returns {headers, rows, ok}.
func run_headless(_host: Node) -> Dictionary:
	var rows := []
	var ok := true
	for batch in [true, false]:
		var store := SharedResource.new()
		var running := AtomicCounter.new(); running.set_count(1)
		var reads := AtomicCounter.new()
		var torn := AtomicCounter.new()
		var started := Time.get_ticks_usec()
		for thread in start(store, 2, 2, HEADLESS_OPS, batch, running, reads, torn):
			thread.wait_to_finish()
		var msec := (Time.get_ticks_usec() - started) / 1000.0
		var gold: int = store.read_value("gold")
		var gold_ok := gold == 2 * HEADLESS_OPS
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
				torn.get_count(), "%d / %d" % [gold, 2 * HEADLESS_OPS], stats.version, "%.0f" % msec, note])
	return {"headers": ["writers use", "snapshots read", "torn snapshots", "gold (update_value)",
			"version", "ms", "check"], "rows": rows, "ok": ok}


## Interactive: start and stop readers and writers; live reads per second, torn snapshots and
## the store's own statistics.
func build_ui(parent: Control) -> void:
	var controls := HBoxContainer.new()
	controls.add_theme_constant_override("separation", 12)
	parent.add_child(controls)
	_batch_mode = CheckButton.new()
	_batch_mode.text = "Writers use batch_update"
	_batch_mode.button_pressed = true
	controls.add_child(_batch_mode)
	var readers_label := Label.new()
	readers_label.text = "Reader threads:"
	controls.add_child(readers_label)
	_readers = SpinBox.new()
	_readers.min_value = 1
	_readers.max_value = 8
	_readers.value = 2
	controls.add_child(_readers)
	_start = Button.new()
	_start.text = "Start"
	_start.pressed.connect(func() -> void:
		if _threads.is_empty():
			_start_live()
		else:
			_stop_live())
	controls.add_child(_start)
	_stats = Label.new()
	_stats.text = "Press Start: 2 writer threads and the reader threads share one SharedResource."
	parent.add_child(_stats)
	parent.add_child(FrameGraph.new())
	var tree := parent.get_tree()
	tree.process_frame.connect(_update)
	parent.tree_exiting.connect(func() -> void:
		tree.process_frame.disconnect(_update)
		_stop_live())


func _start_live() -> void:
	_store = SharedResource.new()
	_running.set_count(1)
	_reads.reset()
	_torn.reset()
	_last_reads = 0
	_last_usec = Time.get_ticks_usec()
	_threads = start(_store, int(_readers.value), 2, -1, _batch_mode.button_pressed, _running, _reads, _torn)
	_batch_mode.disabled = true
	_readers.editable = false
	_start.text = "Stop"


func _stop_live() -> void:
	_running.set_count(0)
	for thread in _threads:
		thread.wait_to_finish()
	_threads.clear()
	_batch_mode.disabled = false
	_readers.editable = true
	_start.text = "Start"


func _update() -> void:
	if _threads.is_empty():
		return
	var now := Time.get_ticks_usec()
	if now - _last_usec < 250_000:
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
