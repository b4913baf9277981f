print("nbody: todo")
