extends SceneTree
func _initialize() -> void:
	await process_frame
	var r := SharedResource.new()
	for k in 16:
		r.write_value(k, k)
	var t0 := Time.get_ticks_usec()
	for i in 3_000_000:
		r.read_value(i & 15)
	print("read_value %.1f ns" % ((Time.get_ticks_usec() - t0) / 3000.0))
	quit()
