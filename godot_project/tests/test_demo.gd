extends "res://tests/support/test_case.gd"
## The demo's sections: their headless checks hold, and their interactive UI builds and runs
## (headless, so nothing is drawn, but every script path executes).

const SECTIONS: Array = preload("res://demo/main.gd").SECTIONS


## The section script titled [param title].
func _section(title: String) -> GDScript:
	for script: GDScript in SECTIONS:
		if script.TITLE == title:
			return script
	fail("no demo section titled " + title)
	return null


func test_every_section_check_holds_headless() -> void:
	for script: GDScript in SECTIONS:
		var result: Dictionary = await script.new().run_headless(self)
		assert_true(result.ok, "%s: %s" % [script.TITLE, result.rows])
		assert_eq(result.rows[0].size(), result.headers.size())


func test_the_task_section_ui_renders_cancels_and_zooms() -> void:
	var script := _section("Tasks")
	var parent := VBoxContainer.new()
	add_child(parent)
	var section: RefCounted = script.new()
	section.build_ui(parent)  # Starts a render on the workers.
	var handles: Array[TaskHandle] = section._handles
	assert_eq(handles.size(), script.TILES)
	section._cancel()
	for i in 30:
		await get_tree().process_frame
		if handles.all(func(h: TaskHandle) -> bool: return h.is_done()):
			break
	assert_true(handles.all(func(h: TaskHandle) -> bool: return h.is_done()), "every tile ended")
	var click := InputEventMouseButton.new()
	click.button_index = MOUSE_BUTTON_LEFT
	click.pressed = true
	click.position = Vector2(256, 256)
	section._on_picture_input(click, parent.find_children("*", "TextureRect", true, false)[0])
	assert_true(section._view.size.x < script.HOME.size.x, "a click zooms in")
	section._cancel()
	parent.queue_free()
	await get_tree().process_frame


func test_the_counter_section_ui_runs() -> void:
	var script := _section("Counters")
	var parent := VBoxContainer.new()
	add_child(parent)
	var section: RefCounted = script.new()
	section.build_ui(parent)  # Runs once with the default thread count.
	assert_true("AtomicCounter" in section._results.text, section._results.text)
	parent.queue_free()
	await get_tree().process_frame


func test_the_dispatcher_section_ui_spawns_and_shows_stats() -> void:
	var script := _section("Dispatcher")
	var parent := VBoxContainer.new()
	add_child(parent)
	var section: RefCounted = script.new()
	section.build_ui(parent)
	for thread in script.spawn(section._field, section._texture, 2, 50, false):
		thread.wait_to_finish()
	# The dispatcher drains within its frame budget, so on a busy machine it takes a few frames.
	for i in 600:
		await get_tree().process_frame
		if MainThreadDispatcher.pending_count() == 0:
			break
	await get_tree().process_frame  # The stats label refreshes on the frame after the last drain.
	assert_eq(section._field.get_child_count(), 100)
	assert_true("sprites: 100" in section._stats.text, section._stats.text)
	parent.queue_free()
	await get_tree().process_frame


func test_the_shared_state_section_ui_runs_live_and_stops_when_closed() -> void:
	var script := _section("Shared state")
	var parent := VBoxContainer.new()
	add_child(parent)
	var section: RefCounted = script.new()
	section.build_ui(parent)
	section._start.pressed.emit()
	assert_eq(section._threads.size(), 2 + 2, "2 writers and the default 2 readers")
	for i in 200:
		await get_tree().process_frame
		if section._reads.get_count() > 0 and section._store.read_value("gold", 0) > 0:
			break
	section._last_usec = 0  # Refresh the stats on the next frame.
	await get_tree().process_frame
	assert_true("torn snapshots: 0" in section._stats.text, section._stats.text)
	assert_true("gold = " in section._stats.text, section._stats.text)
	parent.queue_free()  # Closing the demo stops and joins the threads.
	await get_tree().process_frame
	assert_eq(section._threads.size(), 0)
	assert_eq(section._running.get_count(), 0)


func test_the_strategies_section_ui_draws_a_bar_per_strategy() -> void:
	var parent := VBoxContainer.new()
	add_child(parent)
	var section: RefCounted = _section("Strategies").new()
	section.build_ui(parent)  # Runs once with the default thread count.
	assert_eq(section._chart._rows.size(), 7)
	assert_true("[b]channel to one owner[/b]" in section._lessons.text, section._lessons.text)
	parent.queue_free()
	await get_tree().process_frame


func test_the_deadlock_section_ui_reports_the_cycle() -> void:
	var parent := VBoxContainer.new()
	add_child(parent)
	var section: RefCounted = _section("Deadlock").new()
	section.build_ui(parent)  # Runs the deadlocking order once.
	assert_true("transfer-A-to-B" in section._report.text, section._report.text)
	section._run(true)
	assert_true("deadlocks detected: 0" in section._report.text, section._report.text)
	parent.queue_free()
	await get_tree().process_frame
