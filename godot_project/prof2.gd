extends SceneTree
func _initialize() -> void:
	await process_frame
	var r := SharedResource.new()
	r.write_value("k", 5)
	for i in 5_000_000:
		r.has_value("k")
	quit()
