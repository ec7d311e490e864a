extends Control
## The ThreadKit demo. With a display it is interactive; headless (as `cargo xtask demo` runs it
## on a server) it runs every section, prints one summary table and exits 0 only if every
## section's check holds.

const CounterSection := preload("res://demo/sections/counter_section.gd")

const DEFAULT_THREADS := 8
const INCREMENTS := 100_000

var _threads_slider: HSlider
var _threads_label: Label
var _results: RichTextLabel


func _ready() -> void:
	if DisplayServer.get_name() == "headless":
		await get_tree().process_frame
		get_tree().quit(_run_headless())
	else:
		_build_ui()


func _run_headless() -> int:
	var section := CounterSection.new()
	var result := section.run(DEFAULT_THREADS, INCREMENTS)
	print("")
	print("ThreadKit demo: %s, %d threads x %d increments" % [section.TITLE, DEFAULT_THREADS, INCREMENTS])
	print("  " + section.LESSON)
	print(_table_line(["section", "variant", "expected", "actual", "ms", "check"]))
	for row: Dictionary in result.rows:
		print(_table_line([section.TITLE, row.variant, row.expected, row.actual,
				"%.1f" % row.msec, row.note]))
	print("DEMO %s" % ("OK: every check holds" if result.ok else "FAILED: a check did not hold"))
	return 0 if result.ok else 1


func _table_line(cells: Array) -> String:
	var widths := [10, 15, 10, 10, 9, 0]
	var text := ""
	for i in cells.size():
		text += str(cells[i]).rpad(widths[i]) + (" | " if i < cells.size() - 1 else "")
	return text


func _build_ui() -> void:
	var margin := MarginContainer.new()
	margin.set_anchors_preset(Control.PRESET_FULL_RECT)
	for side in ["left", "right", "top", "bottom"]:
		margin.add_theme_constant_override("margin_" + side, 24)
	add_child(margin)
	var column := VBoxContainer.new()
	column.add_theme_constant_override("separation", 12)
	margin.add_child(column)

	var title := Label.new()
	title.text = "ThreadKit — %s" % CounterSection.TITLE
	title.add_theme_font_size_override("font_size", 28)
	column.add_child(title)
	var lesson := Label.new()
	lesson.text = CounterSection.LESSON
	lesson.autowrap_mode = TextServer.AUTOWRAP_WORD_SMART
	column.add_child(lesson)

	var controls := HBoxContainer.new()
	column.add_child(controls)
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
	column.add_child(_results)
	_run_interactive()


func _update_threads_label() -> void:
	_threads_label.text = "Threads: %d" % int(_threads_slider.value)


func _run_interactive() -> void:
	var threads := int(_threads_slider.value)
	var result := CounterSection.new().run(threads, INCREMENTS)
	var text := "[table=5][cell][b]variant[/b][/cell][cell][b]expected[/b][/cell][cell][b]actual[/b][/cell][cell][b]ms[/b][/cell][cell][b]check[/b][/cell]"
	for row: Dictionary in result.rows:
		var color := "green" if row.ok and row.variant != "plain int +=" else ("orange" if row.ok else "red")
		text += "[cell]%s[/cell][cell]%d[/cell][cell]%d[/cell][cell]%.1f[/cell][cell][color=%s]%s[/color][/cell]" % [
				row.variant, row.expected, row.actual, row.msec, color, row.note]
	_results.text = text + "[/table]\n\n%d threads × %d increments each." % [threads, INCREMENTS]
