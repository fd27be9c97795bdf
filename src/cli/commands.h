#pragma once
// The subcommand groups of `memkv`. Each adds its subcommands to the app;
// their callbacks run the command and leave the process exit status in
// `exit_code`.

namespace CLI {
class App;
}

namespace memkv::cli {

void AddDriveCommands(CLI::App& app, int& exit_code);
void AddSetupCommand(CLI::App& app, int& exit_code);
void AddServerCommand(CLI::App& app, int& exit_code);
void AddKvCommands(CLI::App& app, int& exit_code);
void AddAdminCommands(CLI::App& app, int& exit_code);
void AddDocCommand(CLI::App& app, int& exit_code);

}  // namespace memkv::cli
