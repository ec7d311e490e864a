extends "res://tests/support/test_case.gd"
## The GDScript examples in the READMEs (the project's README.md and the addon's, shipped in the
## zip) compile, run without errors and print what the README says they print. Its convention: a ```gdscript block that prints is followed by a line
## "It prints:" and a ```text block holding the printed lines, in order; `…` in a line stands for
## any text (timings, thread ids, counts that vary).

const WILDCARD := "…"
const PRINTS := "It prints:"
## What an example's _ready() is renamed to, so the test can call it and await its end.
const ENTRY := "_run_example"
## A hang guard, not a timing check: frames an example's late prints (callbacks, dispatched work)
## may take after its function returned.
const MAX_FRAMES := 600


## The READMEs whose examples are checked, by their path from the project's folder, and how many
## examples each has at least.
const READMES := {"README.md": 10, "addons/threadkit/README.md": 3}


## One ```gdscript block of a README.
class Example:
	var file := "README.md"
	var line := 0  ## Where its fence is in [member file] (1-based).
	var source := ""
	var stated := false  ## Whether "It prints:" and a ```text block follow it.
	var prints := PackedStringArray()

	func name() -> String:
		return "%s:%d" % [file, line]


## Collects what is printed, from any thread, and the errors logged, while an example runs.
class Capture extends Logger:
	var _mutex := Mutex.new()
	var _lines := PackedStringArray()
	var _errors := PackedStringArray()

	func _log_message(message: String, _error: bool) -> void:
		_mutex.lock()
		_lines.append_array(message.trim_suffix("\n").split("\n"))
		_mutex.unlock()

	func _log_error(function: String, _file: String, _line: int, code: String, rationale: String,
			_editor_notify: bool, error_type: int, _script_backtraces: Array[ScriptBacktrace]) -> void:
		if error_type == ERROR_TYPE_WARNING:
			return
		_mutex.lock()
		_errors.append("%s %s (in %s)" % [code, rationale, function])
		_mutex.unlock()

	func lines() -> PackedStringArray:
		_mutex.lock()
		var copy := _lines.duplicate()
		_mutex.unlock()
		return copy

	func errors() -> PackedStringArray:
		_mutex.lock()
		var copy := _errors.duplicate()
		_mutex.unlock()
		return copy


func test_every_example_prints_what_the_readme_says() -> void:
	for file: String in READMES:
		var examples := _examples(_readme(file), file)
		assert_true(examples.size() >= READMES[file],
				"%s has its examples: %d found" % [file, examples.size()])
		for example in examples:
			await _check(example)


func _check(example: Example) -> void:
	if not example.stated and "print" in example.source:
		fail("%s prints, but states no output (\"%s\" and a ```text block after it)"
				% [example.name(), PRINTS])
		return
	var printed := await _run(example)
	var mismatch := _mismatch(printed, example.prints)
	if not mismatch.is_empty():
		fail("%s %s" % [example.name(), mismatch])


func test_every_stated_output_belongs_to_an_example() -> void:
	for file: String in READMES:
		var text := _readme(file)
		var stated := _examples(text).filter(func(e: Example) -> bool: return e.stated).size()
		assert_eq(text.count("\n%s\n" % PRINTS), stated,
				"%s: every \"%s\" follows an example's block, or it would go unchecked"
				% [file, PRINTS])


func test_no_example_awaits_into_a_typed_variable() -> void:
	var examples: Array[Example] = []
	for file: String in READMES:
		examples.append_array(_examples(_readme(file), file))
	for example in examples:
		for line in _typed_awaits(example.source):
			fail("%s: `%s`: a task that failed or was cancelled gives null, which a typed variable refuses (\"Trying to assign value of type 'Nil'\"); keep it untyped or check it"
					% [example.name(), line])


## The checks of this file catch what they are for: a wrong line, a missing or extra one, a typed
## await, an example with no stated output.
func test_the_checks_catch_wrong_output() -> void:
	assert_eq(_mismatch(PackedStringArray(["42"]), PackedStringArray(["42"])), "")
	assert_eq(_mismatch(PackedStringArray(["lost 7 of 40; 3 ms"]),
			PackedStringArray(["lost … of 40; … ms"])), "")
	assert_true("line 1" in _mismatch(PackedStringArray(["41"]), PackedStringArray(["42"])))
	assert_true("line 2" in _mismatch(PackedStringArray(["1", "3"]), PackedStringArray(["1", "2"])))
	assert_true("printed 1 line" in _mismatch(PackedStringArray(["1"]),
			PackedStringArray(["1", "2"])))
	assert_true("printed 2 lines" in _mismatch(PackedStringArray(["1", "2"]),
			PackedStringArray(["1"])))
	for pair in [["ab", "a…c"], ["xbc", "a…c"], ["ac", "a…b…c"], ["abc", "abcd"], ["", "…x"],
			["aXc", "a…Y…c"]]:
		assert_false(_matches(pair[0], pair[1]), "%s does not match %s" % pair)
	for pair in [["ac", "a…c"], ["abbbc", "a…b…c"], ["x", "…"], ["a b c", "a … c"]]:
		assert_true(_matches(pair[0], pair[1]), "%s matches %s" % pair)
	assert_eq(_typed_awaits("\tvar n: int = await h.wait()\n\tvar a: Array[int] = await x\n\tvar m := await h.wait()\n\tvar ok = await h.wait()  # var n: int = await\n"),
			PackedStringArray(["var n: int = await h.wait()", "var a: Array[int] = await x",
			"var m := await h.wait()"]))
	var examples := _examples("x\n```gdscript\nprint(1)\n```\n\nIt prints:\n\n```text\n1\n```\n```gdscript\nprint(2)\n```\n")
	assert_eq(examples.size(), 2)
	assert_eq([examples[0].line, examples[0].stated, examples[0].prints], [2, true, PackedStringArray(["1"])])
	assert_eq([examples[1].line, examples[1].stated], [11, false])


func test_the_dispatch_example_survives_its_scene_being_freed() -> void:
	var examples := _examples(_readme()).filter(func(example: Example) -> bool:
		return "MainThreadDispatcher.dispatch(" in example.source)
	assert_eq(examples.size(), 1, "README.md has the dispatch example")
	var script := GDScript.new()
	script.source_code = examples[0].source
	assert_eq(script.reload(), OK)
	var before := MainThreadDispatcher.get_stats()
	var example: Node = script.new()
	add_child(example)
	example.free()  # Before the main thread ran the label's update.
	for i in 3:
		await get_tree().process_frame
	var after := MainThreadDispatcher.get_stats()
	assert_eq(after.dispatched - before.dispatched, 2, "the update and the print")
	assert_eq(after.dropped - before.dropped, 1, "the update was dropped, without an error")


## Runs [param example] in the tree: its _ready() (renamed, so that its end can be awaited), then
## frames until it printed as many lines as stated, then a few more for any extra line. Returns
## the lines it printed; its errors fail the test.
func _run(example: Example) -> PackedStringArray:
	var entry := "func _ready() -> void:"
	if example.source.count(entry) != 1:
		fail("%s has no `%s` to run" % [example.name(), entry])
		return PackedStringArray()
	var script := GDScript.new()
	script.source_code = example.source.replace(entry, "func %s() -> void:" % ENTRY)
	if script.reload() != OK:
		fail("%s does not compile" % example.name())
		return PackedStringArray()
	var capture := Capture.new()
	OS.add_logger(capture)
	var node: Node = script.new()
	add_child(node)
	await node.call(ENTRY)
	var frames := 0
	while capture.lines().size() < example.prints.size() and frames < MAX_FRAMES:
		await get_tree().process_frame
		frames += 1
	for i in 3:
		await get_tree().process_frame
	node.queue_free()
	await get_tree().process_frame
	OS.remove_logger(capture)
	for error in capture.errors():
		fail("%s logged an error: %s" % [example.name(), error])
	return capture.lines()


## "" when [param printed] matches [param stated] line by line, else what differs.
static func _mismatch(printed: PackedStringArray, stated: PackedStringArray) -> String:
	for i in mini(printed.size(), stated.size()):
		if not _matches(printed[i], stated[i]):
			return "line %d: printed \"%s\", the README says \"%s\"" % [i + 1, printed[i], stated[i]]
	if printed.size() != stated.size():
		return "printed %d line%s, the README states %d:\n%s" % [printed.size(),
				"" if printed.size() == 1 else "s", stated.size(), "\n".join(printed)]
	return ""


## Whether [param line] is [param pattern], where each `…` of the pattern stands for any text.
static func _matches(line: String, pattern: String) -> bool:
	var parts := pattern.split(WILDCARD)
	if parts.size() == 1:
		return line == pattern
	if not line.begins_with(parts[0]):
		return false
	var at := parts[0].length()
	for i in range(1, parts.size() - 1):
		var found := line.find(parts[i], at)
		if found == -1:
			return false
		at = found + parts[i].length()
	var last := parts[parts.size() - 1]
	return line.length() - last.length() >= at and line.ends_with(last)


## The lines of [param source] that assign an await to a typed variable (comments left out).
static func _typed_awaits(source: String) -> PackedStringArray:
	var typed := RegEx.create_from_string("var\\s+\\w+\\s*(:\\s*[\\w\\[\\], ]+\\s*=|:=)\\s*await\\b")
	var found := PackedStringArray()
	for line in source.split("\n"):
		var code := line.get_slice("#", 0)
		if typed.search(code):
			found.append(code.strip_edges())
	return found


## The text of [param file], a path from the project's folder (README.md by default).
func _readme(file := "README.md") -> String:
	var path := ProjectSettings.globalize_path("res://").path_join("..").path_join(file)
	var text := FileAccess.get_file_as_string(path)
	assert_false(text.is_empty(), "%s read from %s" % [file, path])
	return text


## Every ```gdscript block of [param text] (the text of [param file]) with its stated output, when
## it has one.
static func _examples(text: String, file := "README.md") -> Array[Example]:
	var lines := text.split("\n")
	var examples: Array[Example] = []
	var i := 0
	while i < lines.size():
		if lines[i] != "```gdscript":
			i += 1
			continue
		var example := Example.new()
		example.file = file
		example.line = i + 1
		i += 1
		var body := PackedStringArray()
		while i < lines.size() and lines[i] != "```":
			body.append(lines[i])
			i += 1
		example.source = "\n".join(body) + "\n"
		i += 1
		var next := i
		while next < lines.size() and lines[next].strip_edges().is_empty():
			next += 1
		if next < lines.size() and lines[next] == PRINTS:
			next += 1
			while next < lines.size() and lines[next].strip_edges().is_empty():
				next += 1
			if next < lines.size() and lines[next] == "```text":
				example.stated = true
				next += 1
				while next < lines.size() and lines[next] != "```":
					example.prints.append(lines[next])
					next += 1
				i = next + 1
		examples.append(example)
	return examples
