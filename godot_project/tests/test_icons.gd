extends "res://tests/support/test_case.gd"

## Every ThreadKit class Godot shows has an icon in the .gdextension's [icons] section, and each
## icon imports as a 16×16 texture, the size of Godot's own editor icons.

const GDEXTENSION := "res://addons/threadkit/threadkit.gdextension"
## Registered by the library but hidden from scripts and the editor (gdext `internal`), or
## compiled only into the tests' library (`test-probes`): no icon.
const HIDDEN := ["BoundTasks", "ScriptErrorWatch", "ThreadSwitch", "ThreadKitTestProbe"]


func _icons() -> Dictionary:
	var config := ConfigFile.new()
	assert_eq(config.load(GDEXTENSION), OK)
	var icons := {}
	for cls in config.get_section_keys("icons"):
		icons[cls] = config.get_value("icons", cls)
	return icons


func test_every_threadkit_class_has_an_icon_entry() -> void:
	var icons := _icons()
	var classes: Array[String] = []
	for cls in ClassDB.get_class_list():
		if ClassDB.class_get_api_type(cls) == ClassDB.API_EXTENSION and not HIDDEN.has(cls):
			classes.append(cls)
	assert_true(classes.has("AsyncTaskProcessor") and classes.has("TaskHandle"), str(classes))
	for cls in classes:
		assert_true(icons.has(cls), "%s has no [icons] entry in %s" % [cls, GDEXTENSION])
	for cls in icons:
		assert_true(ClassDB.class_exists(cls), "[icons] names %s, which is no class" % cls)


func test_every_icon_loads_as_a_16_by_16_texture() -> void:
	var icons := _icons()
	assert_eq(icons.size(), 12)
	for cls in icons:
		var path: String = icons[cls]
		assert_eq(path, "res://addons/threadkit/icons/%s.svg" % cls)
		var texture := load(path) as Texture2D
		assert_true(texture != null, "%s does not load as a Texture2D" % path)
		if texture != null:
			assert_eq(texture.get_size(), Vector2(16, 16), path)
