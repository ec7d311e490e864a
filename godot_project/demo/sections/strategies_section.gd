class_name DemoStrategiesSection
extends DemoSection
## Demo section: the same shared count kept seven ways by N threads (ThreadSafetyTester's
## compare_strategies): what each costs per operation, and which ones lose updates.

## Threads sharing the count (headless, and the spin box's start value).
@export_range(1, 16) var threads := 4
## Operations per thread: enough for the time per operation to mean something. (The
## unsynchronized row loses updates in every run with 2 or more threads, whatever the count.)
@export_range(10_000, 10_000_000, 10_000) var operations := 1_000_000

@onready var _threads: SpinBox = %Threads
@onready var _run_button: Button = %Run
@onready var _chart: DemoBarChart = %Chart
@onready var _lessons: RichTextLabel = %Lessons


## Headless: every strategy once. Returns {headers, rows, ok}.
func run_headless(_host: Node) -> Dictionary:
	var strategies := ThreadSafetyTester.new().compare_strategies(threads, operations)
	var ok := strategies.size() == 7
	var rows := []
	for s: Dictionary in strategies:
		var check := "exact" if s.correct else "lost %d updates" % (s.expected - s.actual)
		if s.correct != _exact(s.name, threads):
			ok = false
			check = "WRONG: " + check
		rows.append([s.name, s.expected, s.actual, "%.1f" % s.ns_per_op, check])
	rows.append(["(%d threads x %d operations)" % [threads, operations], "", "", "", ""])
	return {"headers": ["strategy", "expected", "actual", "ns/op", "check"], "rows": rows, "ok": ok}


## Interactive: runs once with the exported thread count.
func _ready() -> void:
	super()
	_threads.value = threads
	_run_button.text = "Run (%d operations per thread)" % operations
	_run()


func _run() -> void:
	var thread_count := int(_threads.value)
	var strategies := ThreadSafetyTester.new().compare_strategies(thread_count, operations)
	var bars: Array[Dictionary] = []
	var text := ""
	var ok := strategies.size() == 7
	for s: Dictionary in strategies:
		var color := Color.LIME_GREEN if s.correct else Color.ORANGE_RED
		var result := "exact" if s.correct else "lost %d of %d" % [s.expected - s.actual, s.expected]
		bars.append({"label": s.name, "value": s.ns_per_op, "color": color,
				"text": "%.1f ns/op, %s" % [s.ns_per_op, result]})
		text += "[b]%s[/b]: %s\n" % [s.name, s.lesson]
		ok = ok and s.correct == _exact(s.name, thread_count)
	_chart.set_rows(bars)
	_lessons.text = text + "\n%d threads × %d operations each; bar length = time per operation." % [thread_count, operations]
	run_finished.emit(ok)


## Whether the strategy [param name] counts every increment: all do but the unsynchronized one,
## which loses updates in every run with two or more threads.
static func _exact(name: String, thread_count: int) -> bool:
	return name != "unsynchronized" or thread_count == 1
