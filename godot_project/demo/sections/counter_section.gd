class_name DemoCounterSection
extends DemoSection
## Demo section 1: several threads count to the same total three ways.

## Threads counting at once (headless, and the slider's start value).
@export_range(1, 16) var threads := 8
## Increments each thread makes, per variant.
@export_range(1000, 1_000_000, 1000) var increments := 100_000

@onready var _threads_slider: HSlider = %Threads
@onready var _threads_label: Label = %ThreadsLabel
@onready var _results: RichTextLabel = %Results


## A plain GDScript object: threads do `box.value += 1` on it, as naive code would.
class Box:
	var value := 0


## Runs [param thread_count] threads doing [param per_thread] increments each, per variant.
## Returns {rows: [{variant, expected, actual, msec, ok, note}], ok}.
static func run(thread_count: int, per_thread: int) -> Dictionary:
	var expected := thread_count * per_thread
	var rows: Array[Dictionary] = []

	var box := Box.new()
	var msec := _time_threads(thread_count, func() -> void:
		for i in per_thread:
			box.value += 1)
	var lost := expected - box.value
	rows.append(_row("plain int +=", expected, box.value, msec, true,
			"lost %d updates" % lost if lost > 0 else "no loss this time: it is luck, run again"))

	var counter := AtomicCounter.new()
	msec = _time_threads(thread_count, func() -> void:
		for i in per_thread:
			counter.increment())
	rows.append(_row("AtomicCounter", expected, counter.get_count(), msec,
			counter.get_count() == expected, "exact"))

	var mutex := Mutex.new()
	var guarded := Box.new()
	msec = _time_threads(thread_count, func() -> void:
		for i in per_thread:
			mutex.lock()
			guarded.value += 1
			mutex.unlock())
	rows.append(_row("Mutex + int", expected, guarded.value, msec,
			guarded.value == expected, "exact, but every increment takes the lock"))

	var ok := rows.all(func(row: Dictionary) -> bool: return row.ok)
	return {"rows": rows, "ok": ok}


static func _row(variant: String, expected: int, actual: int, msec: float, ok: bool, note: String) -> Dictionary:
	return {"variant": variant, "expected": expected, "actual": actual, "msec": msec, "ok": ok,
			"note": note if ok else "WRONG: " + note}


static func _time_threads(count: int, body: Callable) -> float:
	var started := Time.get_ticks_usec()
	var started_threads: Array[Thread] = []
	for i in count:
		var thread := Thread.new()
		thread.start(body)
		started_threads.append(thread)
	for thread in started_threads:
		thread.wait_to_finish()
	return (Time.get_ticks_usec() - started) / 1000.0


## Headless: every variant once. Returns {headers, rows, ok}.
func run_headless(_host: Node) -> Dictionary:
	var result := run(threads, increments)
	var rows: Array = result.rows.map(func(row: Dictionary) -> Array:
		return [row.variant, row.expected, row.actual, "%.1f" % row.msec, row.note])
	rows.append(["(%d threads x %d increments)" % [threads, increments], "", "", "", ""])
	return {"headers": ["variant", "expected", "actual", "ms", "check"], "rows": rows, "ok": result.ok}


## Interactive: runs once with the exported thread count.
func _ready() -> void:
	super()
	_threads_slider.value = threads
	_on_threads_changed(_threads_slider.value)
	_run_interactive()


func _on_threads_changed(value: float) -> void:
	_threads_label.text = "Threads: %d" % int(value)


func _run_interactive() -> void:
	var thread_count := int(_threads_slider.value)
	var result := run(thread_count, increments)
	var text := "[table=5][cell][b]variant[/b][/cell][cell][b]expected[/b][/cell][cell][b]actual[/b][/cell][cell][b]ms[/b][/cell][cell][b]check[/b][/cell]"
	for row: Dictionary in result.rows:
		var color := "green" if row.ok and row.variant != "plain int +=" else ("orange" if row.ok else "red")
		text += "[cell]%s[/cell][cell]%d[/cell][cell]%d[/cell][cell]%.1f[/cell][cell][color=%s]%s[/color][/cell]" % [
				row.variant, row.expected, row.actual, row.msec, color, row.note]
	_results.text = text + "[/table]\n\n%d threads × %d increments each." % [thread_count, increments]
	run_finished.emit(result.ok)
