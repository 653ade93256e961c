print("nvmefs")
