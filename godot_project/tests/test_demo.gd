extends "res://tests/support/test_case.gd"
## The demo's sections: their headless checks hold, and their interactive UI (each section's
## scene, its controls wired in the .tscn) builds and runs headless, so nothing is drawn but every
## script path executes.


## A new instance of the section titled [param title], not yet in the tree.
func _section(title: String) -> DemoSection:
	for scene in DemoMain.SECTIONS:
		var section: DemoSection = scene.instantiate()
		if section.title == title:
			return section
		section.free()
	fail("no demo section titled " + title)
	return null


## Awaits frames until [param section] emits [signal DemoSection.run_finished] (at most
## [param frames] frames); returns its [code]ok[/code], or [code]false[/code] if it did not finish.
func _await_run(section: DemoSection, frames: int) -> bool:
	var outcome: Array[bool] = []
	var record := func(ok: bool) -> void: outcome.append(ok)
	section.run_finished.connect(record)
	for i in frames:
		if not outcome.is_empty():
			break
		await get_tree().process_frame
	section.run_finished.disconnect(record)
	return outcome.size() == 1 and outcome[0]


func test_every_section_check_holds_headless() -> void:
	var titles: Array[String] = []
	for scene in DemoMain.SECTIONS:
		var section: DemoSection = scene.instantiate()
		var result: Dictionary = await section.run_headless(self)
		assert_true(result.ok, "%s: %s" % [section.title, result.rows])
		assert_eq(result.rows[0].size(), result.headers.size())
		assert_false(section.lesson.is_empty(), section.title + " has a lesson")
		titles.append(section.title)
		section.free()
	assert_eq(titles, ["Counters", "Strategies", "Tasks", "Dispatcher", "Shared state", "Deadlock"] as Array[String])


func test_the_task_section_ui_renders_cancels_and_zooms() -> void:
	var section := _section("Tasks") as DemoTaskSection
	add_child(section)  # Starts a render on the workers.
	var handles: Array[TaskHandle] = section._handles
	assert_eq(handles.size(), DemoTaskSection.TILES)
	assert_eq((section.get_node("%Lesson") as Label).text, section.lesson)
	(section.get_node("%Cancel") as Button).pressed.emit()
	assert_true(await _await_run(section, 300), "every tile ended, completed or cancelled")
	assert_true(handles.all(func(h: TaskHandle) -> bool: return h.is_done()), "every tile ended")
	var click := InputEventMouseButton.new()
	click.button_index = MOUSE_BUTTON_LEFT
	click.pressed = true
	click.position = Vector2(256, 256)
	(section.get_node("%Picture") as TextureRect).gui_input.emit(click)
	assert_true(section._view.size.x < DemoTaskSection.HOME.size.x, "a click zooms in")
	assert_true(section._handles != handles, "the zoom starts a new render")
	(section.get_node("%Cancel") as Button).pressed.emit()
	section.queue_free()
	await get_tree().process_frame


func test_the_counter_section_ui_runs() -> void:
	var section := _section("Counters") as DemoCounterSection
	section.threads = 3
	section.increments = 1000
	add_child(section)  # Runs once with the exported thread count.
	assert_true("AtomicCounter" in section._results.text, section._results.text)
	assert_true("3 threads × 1000 increments" in section._results.text, section._results.text)
	var slider := section.get_node("%Threads") as HSlider
	slider.value = 2
	assert_eq((section.get_node("%ThreadsLabel") as Label).text, "Threads: 2")
	var finished: Array[bool] = []
	section.run_finished.connect(func(ok: bool) -> void: finished.append(ok))
	(section.get_node("%Run") as Button).pressed.emit()
	assert_eq(finished, [true] as Array[bool])
	assert_true("2 threads × 1000 increments" in section._results.text, section._results.text)
	section.queue_free()
	await get_tree().process_frame


func test_the_dispatcher_section_ui_spawns_and_shows_stats() -> void:
	var section := _section("Dispatcher") as DemoDispatcherSection
	section.threads = 2
	section.sprites_per_thread = 50
	add_child(section)
	assert_eq((section.get_node("%SpawnDispatcher") as Button).text, "Spawn 100 (dispatcher)")
	(section.get_node("%SpawnDispatcher") as Button).pressed.emit()
	# The dispatcher drains within its frame budget, so on a busy machine it takes a few frames.
	assert_true(await _await_run(section, 600), "every sprite arrived")
	assert_eq(MainThreadDispatcher.pending_count(), 0)
	assert_eq(section._field.get_child_count(), 100)
	assert_true("sprites: 100" in section._stats.text, section._stats.text)
	section.queue_free()
	await get_tree().process_frame


func test_the_shared_state_section_ui_runs_live_and_stops_when_closed() -> void:
	var section := _section("Shared state") as DemoSharedStateSection
	add_child(section)
	section._start.pressed.emit()
	assert_eq(section._threads.size(), section.writers + section.readers)
	assert_eq(section._threads.size(), 2 + 2, "2 writers and the default 2 readers")
	for i in 200:
		await get_tree().process_frame
		if section._reads.get_count() > 0 and section._store.read_value("gold", 0) > 0:
			break
	section._last_usec = 0  # Refresh the stats on the next _process.
	await get_tree().process_frame  # Resumes before this frame's _process...
	await get_tree().process_frame  # ...so wait for the next one too.
	assert_true("torn snapshots: 0" in section._stats.text, section._stats.text)
	assert_true("gold = " in section._stats.text, section._stats.text)
	var threads: Array[Thread] = section._threads
	var running: AtomicCounter = section._running
	section.queue_free()  # Closing the demo stops and joins the threads.
	await get_tree().process_frame
	assert_false(is_instance_valid(section))
	assert_eq(threads.size(), 0)
	assert_eq(running.get_count(), 0)


func test_the_strategies_section_ui_draws_a_bar_per_strategy() -> void:
	var section := _section("Strategies") as DemoStrategiesSection
	add_child(section)  # Runs once with the exported thread count.
	assert_eq(section._chart.row_count(), 7)
	assert_true("[b]channel to one owner[/b]" in section._lessons.text, section._lessons.text)
	section.queue_free()
	await get_tree().process_frame


func test_the_deadlock_section_ui_reports_the_cycle() -> void:
	var section := _section("Deadlock") as DemoDeadlockSection
	add_child(section)  # Runs the deadlocking order once.
	assert_true("transfer-A-to-B" in section._report.text, section._report.text)
	var finished: Array[bool] = []
	section.run_finished.connect(func(ok: bool) -> void: finished.append(ok))
	(section.get_node("%Ordered") as Button).pressed.emit()
	assert_true("deadlocks detected: 0" in section._report.text, section._report.text)
	assert_eq(finished, [true] as Array[bool])
	section.queue_free()
	await get_tree().process_frame
