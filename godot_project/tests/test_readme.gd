extends "res://tests/support/test_case.gd"
## The GDScript examples in the top-level README.md must compile and run without errors.


func test_quick_start_runs() -> void:
	var blocks := _gdscript_blocks()
	assert_true(blocks.size() >= 1, "README.md has a gdscript block")
	for source in blocks:
		var script := GDScript.new()
		script.source_code = source
		assert_eq(script.reload(), OK, "README example compiles")
		if not script.can_instantiate():
			continue
		var example: Node = script.new()
		add_child(example)  # Runs its _ready(), which may await.
		for i in 60:  # Long enough for the examples' awaits to resume and finish.
			await get_tree().process_frame
		example.queue_free()
	await get_tree().process_frame


func test_the_dispatch_example_survives_its_scene_being_freed() -> void:
	var examples := _gdscript_blocks().filter(func(source: String) -> bool:
		return "MainThreadDispatcher.dispatch(" in source)
	assert_eq(examples.size(), 1, "README.md has the dispatch example")
	var script := GDScript.new()
	script.source_code = examples[0]
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


func _gdscript_blocks() -> Array[String]:
	var path := ProjectSettings.globalize_path("res://").path_join("../README.md")
	var text := FileAccess.get_file_as_string(path)
	var blocks: Array[String] = []
	var parts := text.split("```gdscript\n")
	for i in range(1, parts.size()):
		blocks.append(parts[i].split("```")[0])
	return blocks
