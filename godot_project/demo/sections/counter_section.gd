extends RefCounted
## Demo section 1: several threads count to the same total three ways.

const TITLE := "Counters"
const LESSON := "A shared int's += is a read then a write: threads overwrite each other's updates. AtomicCounter never loses one, without a lock."


const DEFAULT_THREADS := 8
const INCREMENTS := 100_000

var _threads_slider: HSlider
var _threads_label: Label
var _results: RichTextLabel


## A plain GDScript object: threads do `box.value += 1` on it, as naive code would.
class Box:
	var value := 0


## Runs [param threads] threads doing [param increments] increments each, per variant.
## Returns {rows: [{variant, expected, actual, msec, ok, note}], ok}.
func run(threads: int, increments: int) -> Dictionary:
	var expected := threads * increments
	var rows := []

	var box := Box.new()
	var msec := _time_threads(threads, func() -> void:
		for i in increments:
			box.value += 1)
	var lost := expected - box.value
	rows.append(_row("plain int +=", expected, box.value, msec, true,
			"lost %d updates" % lost if lost > 0 else "no loss this time: it is luck, run again"))

	var counter := AtomicCounter.new()
	msec = _time_threads(threads, func() -> void:
		for i in increments:
			counter.increment())
	rows.append(_row("AtomicCounter", expected, counter.get_count(), msec,
			counter.get_count() == expected, "exact"))

	var mutex := Mutex.new()
	var guarded := Box.new()
	msec = _time_threads(threads, func() -> void:
		for i in increments:
			mutex.lock()
			guarded.value += 1
			mutex.unlock())
	rows.append(_row("Mutex + int", expected, guarded.value, msec,
			guarded.value == expected, "exact, but every increment takes the lock"))

	var ok := rows.all(func(row: Dictionary) -> bool: return row.ok)
	return {"rows": rows, "ok": ok}


func _row(variant: String, expected: int, actual: int, msec: float, ok: bool, note: String) -> Dictionary:
	return {"variant": variant, "expected": expected, "actual": actual, "msec": msec, "ok": ok,
			"note": note if ok else "WRONG: " + note}


func _time_threads(count: int, body: Callable) -> float:
	var started := Time.get_ticks_usec()
	var threads: Array[Thread] = []
	for i in count:
		var thread := Thread.new()
		thread.start(body)
		threads.append(thread)
	for thread in threads:
		thread.wait_to_finish()
	return (Time.get_ticks_usec() - started) / 1000.0


## Headless: every variant once. Returns {headers, rows, ok}.
func run_headless(_host: Node) -> Dictionary:
	var result := run(DEFAULT_THREADS, INCREMENTS)
	var rows: Array = result.rows.map(func(row: Dictionary) -> Array:
		return [row.variant, row.expected, row.actual, "%.1f" % row.msec, row.note])
	rows.append(["(%d threads x %d increments)" % [DEFAULT_THREADS, INCREMENTS], "", "", "", ""])
	return {"headers": ["variant", "expected", "actual", "ms", "check"], "rows": rows, "ok": result.ok}


## Interactive: a thread-count slider, a Run button and the result table.
func build_ui(parent: Control) -> void:
	var controls := HBoxContainer.new()
	parent.add_child(controls)
	_threads_label = Label.new()
	controls.add_child(_threads_label)
	_threads_slider = HSlider.new()
	_threads_slider.min_value = 1
	_threads_slider.max_value = 16
	_threads_slider.value = DEFAULT_THREADS
	_threads_slider.custom_minimum_size.x = 240
	_threads_slider.value_changed.connect(func(_v: float) -> void: _update_threads_label())
	controls.add_child(_threads_slider)
	var run_button := Button.new()
	run_button.text = "Run"
	run_button.pressed.connect(_run_interactive)
	controls.add_child(run_button)
	_update_threads_label()

	_results = RichTextLabel.new()
	_results.bbcode_enabled = true
	_results.fit_content = true
	_results.custom_minimum_size.y = 200
	parent.add_child(_results)
	_run_interactive()


func _update_threads_label() -> void:
	_threads_label.text = "Threads: %d" % int(_threads_slider.value)


func _run_interactive() -> void:
	var threads := int(_threads_slider.value)
	var result := run(threads, INCREMENTS)
	var text := "[table=5][cell][b]variant[/b][/cell][cell][b]expected[/b][/cell][cell][b]actual[/b][/cell][cell][b]ms[/b][/cell][cell][b]check[/b][/cell]"
	for row: Dictionary in result.rows:
		var color := "green" if row.ok and row.variant != "plain int +=" else ("orange" if row.ok else "red")
		text += "[cell]%s[/cell][cell]%d[/cell][cell]%d[/cell][cell]%.1f[/cell][cell][color=%s]%s[/color][/cell]" % [
				row.variant, row.expected, row.actual, row.msec, color, row.note]
	_results.text = text + "[/table]\n\n%d threads × %d increments each." % [threads, INCREMENTS]
