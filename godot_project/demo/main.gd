class_name DemoMain
extends Control
## The ThreadKit demo. With a display it is interactive, a tab per section; headless (as
## `cargo xtask demo` runs it on a server) it runs every section, prints a summary table per
## section and exits 0 only if every section's check holds.

## The sections, in tab order: scenes whose root is a [DemoSection].
const SECTIONS: Array[PackedScene] = [
	preload("res://demo/sections/counter_section.tscn"),
	preload("res://demo/sections/strategies_section.tscn"),
	preload("res://demo/sections/task_section.tscn"),
	preload("res://demo/sections/dispatcher_section.tscn"),
	preload("res://demo/sections/shared_state_section.tscn"),
	preload("res://demo/sections/deadlock_section.tscn"),
]

@onready var _tabs: TabContainer = %Tabs


func _ready() -> void:
	if DisplayServer.get_name() == "headless":
		await get_tree().process_frame
		get_tree().quit(await _run_headless())
	else:
		for scene in SECTIONS:
			var section: DemoSection = scene.instantiate()
			_tabs.add_child(section)
			_tabs.set_tab_title(_tabs.get_tab_count() - 1, section.title)
		var screenshot := _user_arg("--screenshot=")
		if not screenshot.is_empty():
			get_tree().quit(await _take_screenshot(screenshot, int(_user_arg("--tab=", "0"))))


## Runs every section's check on an instance kept out of the tree (so its interactive UI never
## starts) and prints the tables; returns the exit code.
func _run_headless() -> int:
	var all_ok := true
	var summary := []
	for scene in SECTIONS:
		var section: DemoSection = scene.instantiate()
		var result: Dictionary = await section.run_headless(self)
		print("")
		print("ThreadKit demo: %s" % section.title)
		print("  " + section.lesson)
		_print_table(result.headers, result.rows)
		for note: String in result.get("notes", []):
			print("  " + note)
		all_ok = all_ok and result.ok
		summary.append([section.title, "holds" if result.ok else "FAILED", section.lesson.get_slice(".", 0) + "."])
		section.free()
	print("")
	print("ThreadKit demo: summary")
	_print_table(["section", "check", "lesson"], summary)
	print("")
	print("DEMO %s" % ("OK: every check holds" if all_ok else "FAILED: a check did not hold"))
	return 0 if all_ok else 1


func _print_table(headers: Array, rows: Array) -> void:
	var widths := headers.map(func(h: Variant) -> int: return str(h).length())
	for row: Array in rows:
		for i in row.size():
			widths[i] = maxi(widths[i], str(row[i]).length())
	for row: Array in [headers] + rows:
		var cells := PackedStringArray()
		for i in row.size():
			cells.append(str(row[i]).rpad(widths[i]))
		print("  " + " | ".join(cells).strip_edges(false, true))


# Screenshot mode (`cargo xtask demo --screenshot PATH`), apart from the demo itself: show a tab,
# let it draw for a while, save the window as a PNG and quit.

## Frames drawn before the capture, so the sections that draw over time have something to show.
const SCREENSHOT_FRAMES := 90


## The value of the user argument (after [code]--[/code]) that starts with [param prefix].
func _user_arg(prefix: String, default := "") -> String:
	for arg: String in OS.get_cmdline_user_args():
		if arg.begins_with(prefix):
			return arg.trim_prefix(prefix)
	return default


## Saves the window, showing tab [param tab], to [param path]; returns the exit code.
func _take_screenshot(path: String, tab: int) -> int:
	if tab < 0 or tab >= _tabs.get_tab_count():
		printerr("demo: --tab=%d, but the tabs are 0 to %d" % [tab, _tabs.get_tab_count() - 1])
		return 2
	_tabs.current_tab = tab
	for i in SCREENSHOT_FRAMES:
		await get_tree().process_frame
	await RenderingServer.frame_post_draw
	var image := get_viewport().get_texture().get_image()
	if _is_blank(image):
		printerr("demo: the window is one flat colour; nothing was drawn")
		return 1
	var error := image.save_png(path)
	if error != OK:
		printerr("demo: could not save %s: %s" % [path, error_string(error)])
		return 1
	print("demo: saved %s" % path)
	return 0


## True when every sampled pixel has the same colour (a black or empty frame).
func _is_blank(image: Image) -> bool:
	var first := image.get_pixel(0, 0)
	for y in range(0, image.get_height(), 8):
		for x in range(0, image.get_width(), 8):
			if image.get_pixel(x, y) != first:
				return false
	return true
