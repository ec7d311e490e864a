extends RefCounted
## Demo section: the same shared count kept seven ways by N threads (ThreadSafetyTester's
## compare_strategies): what each costs per operation, and which ones lose updates.

const TITLE := "Strategies"
const LESSON := "Unsynchronized load-then-store loses updates. An atomic is the cheapest correct way to share a count; locks pay for contention; a spin lock burns cores while it waits; a channel to one owner thread trades speed for never sharing memory."
const BarChart := preload("res://demo/widgets/bar_chart.gd")

const DEFAULT_THREADS := 4
## Enough that the threads overlap: at a few ns per operation, fewer would let each thread finish
## before the next starts, and the unsynchronized row would lose nothing.
const OPERATIONS := 1_000_000

var _threads: SpinBox
var _chart: BarChart
var _lessons: RichTextLabel


## Headless: every strategy once. Returns {headers, rows, ok}.
func run_headless(_host: Node) -> Dictionary:
	var strategies := ThreadSafetyTester.new().compare_strategies(DEFAULT_THREADS, OPERATIONS)
	var ok := strategies.size() == 7
	var rows := []
	for s: Dictionary in strategies:
		var check := "exact" if s.correct else "lost %d updates" % (s.expected - s.actual)
		if s.name == "unsynchronized":
			if s.correct:
				check = "no loss this time: it is luck, run again"
		else:
			ok = ok and s.correct
			if not s.correct:
				check = "WRONG: " + check
		rows.append([s.name, s.expected, s.actual, "%.1f" % s.ns_per_op, check])
	rows.append(["(%d threads x %d operations)" % [DEFAULT_THREADS, OPERATIONS], "", "", "", ""])
	return {"headers": ["strategy", "expected", "actual", "ns/op", "check"], "rows": rows, "ok": ok}


## Interactive: a thread count, a Run button, the bar chart and each strategy's lesson.
func build_ui(parent: Control) -> void:
	var controls := HBoxContainer.new()
	controls.add_theme_constant_override("separation", 12)
	parent.add_child(controls)
	var label := Label.new()
	label.text = "Threads:"
	controls.add_child(label)
	_threads = SpinBox.new()
	_threads.min_value = 1
	_threads.max_value = 16
	_threads.value = DEFAULT_THREADS
	controls.add_child(_threads)
	var run := Button.new()
	run.text = "Run (%d operations per thread)" % OPERATIONS
	run.pressed.connect(_run)
	controls.add_child(run)
	_chart = BarChart.new()
	parent.add_child(_chart)
	_lessons = RichTextLabel.new()
	_lessons.bbcode_enabled = true
	_lessons.fit_content = true
	parent.add_child(_lessons)
	_run()


func _run() -> void:
	var threads := int(_threads.value)
	var strategies := ThreadSafetyTester.new().compare_strategies(threads, OPERATIONS)
	var bars := []
	var text := ""
	for s: Dictionary in strategies:
		var color := Color.LIME_GREEN if s.correct else Color.ORANGE_RED
		var result := "exact" if s.correct else "lost %d of %d" % [s.expected - s.actual, s.expected]
		bars.append({"label": s.name, "value": s.ns_per_op, "color": color,
				"text": "%.1f ns/op, %s" % [s.ns_per_op, result]})
		text += "[b]%s[/b]: %s\n" % [s.name, s.lesson]
	_chart.set_rows(bars)
	_lessons.text = text + "\n%d threads × %d operations each; bar length = time per operation." % [threads, OPERATIONS]
